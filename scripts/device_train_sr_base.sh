#!/usr/bin/env bash
# Train the larger RGB family (sr-base-rgb-x2, configs/default/rgb_x2_base*.yaml) on a lent GPU
# machine within a time budget, and put the weights under $OUT; score them back on the dev
# machine with `--evaluate-only` (docs/weights.md, "The GPU route"). Usage, from the repo root:
#
#   bash scripts/device_train_sr_base.sh SECONDS [OUT_DIR]
#
# A 150-step probe (PROBE_STEPS) measures this machine's steps per second first; the budget left is then
# split 3:1 between stage 1 (bicubic) and stage 2 (shared detail, random degradations).
# DEVICE=cpu PROBE_STEPS=2 runs the same steps here (a smoke test; tests/test_default_weights_script.py).
set -euo pipefail
budget=${1:?usage: device_train_sr_base.sh SECONDS [OUT_DIR]}
out=${2:-${OUT:-runs/device}}
runs=runs/default
py=${PYTHON:-python3}
export PYTHONPATH=${PYTHONPATH:+$PYTHONPATH:}. PYTHONUNBUFFERED=1
mkdir -p "$out"
probe_steps=${PROBE_STEPS:-150}
train() {
  "$py" scripts/train_default_weights.py --train-only --device "${DEVICE:-cuda}" "$@" 2>&1 \
    | grep -v -e "s/step" -e "step/s" || true  # no progress-bar lines in the log
}

start=$(date +%s)
train --only rgb_x2_base_stage1 --steps "$probe_steps" --out-dir /tmp/sr_base_probe
probe=$(( $(date +%s) - start ))
left=$(( budget - probe - 60 ))  # a minute for start-up, saving and copying
[ "$left" -gt 60 ] || { echo "budget too small after a ${probe}s probe" >&2; exit 1; }
rate=$(( probe_steps * 1000 / (probe > 0 ? probe : 1) ))  # steps per 1000 s, start-up included
steps1=$(( rate * left * 3 / 4 / 1000 )); steps2=$(( rate * left / 4 / 1000 ))
echo "probe: ${probe_steps} steps in ${probe}s; stage 1: ${steps1} steps, stage 2: ${steps2} steps"
train --only rgb_x2_base_stage1 --steps "$steps1" --out-dir "$runs"
train --only rgb_x2_base --steps "$steps2" --out-dir "$runs"
for run in sr-base-rgb-x2-stage1 sr-base-rgb-x2; do
  cp "$runs/$run/weights.safetensors" "$out/$run.safetensors"
  cp "$runs/$run/log.csv" "$out/$run.log.csv"
done
echo "done in $(( $(date +%s) - start ))s: $(ls "$out")"
