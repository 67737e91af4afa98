#!/usr/bin/env bash
# Train the larger RGB family (sr-base-rgb-x2, configs/default/rgb_x2_base*.yaml) on a lent GPU
# machine within a time budget, and put the weights under $OUT; score them back on the dev
# machine with `--evaluate-only` (docs/weights.md, "The GPU route"). Usage, from the repo root:
#
#   bash scripts/device_train_sr_base.sh SECONDS [OUT_DIR]
#
# A 150-step probe (PROBE_STEPS) measures this machine's steps per second and start-up time first;
# the budget left is then split 3:1 (STAGE1_SHARE=75 per cent) between stage 1 (bicubic) and
# stage 2 (shared detail, random degradations). Stage 1 weights already in
# runs/default/sr-base-rgb-x2-stage1/ are kept, and the whole budget goes to stage 2.
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
    | { grep -v -e "s/step" -e "step/s" || true; }  # no progress-bar lines; a failed run stops here
}

start=$(date +%s)
train --only rgb_x2_base_stage1 --steps "$probe_steps" --out-dir /tmp/sr_base_probe
probe=$(( $(date +%s) - start ))
# The probe's log says how long its steps took (the last column, seconds); the rest of the probe
# was start-up (corpus, workers, CUDA), which each of the two runs below pays again.
stepping=$(tail -n 1 /tmp/sr_base_probe/sr-base-rgb-x2-stage1/log.csv | awk -F, '{print int($NF + 1)}')
startup=$(( probe - stepping > 0 ? probe - stepping : 0 ))
left=$(( budget - probe - 2 * startup - 45 ))  # and 45 s for saving and copying
[ "$left" -gt 60 ] || { echo "budget too small after a ${probe}s probe" >&2; exit 1; }
rate=$(( probe_steps * 1000 / (stepping > 0 ? stepping : 1) ))  # steps per 1000 s
share1=${STAGE1_SHARE:-75}  # per cent of the steps for stage 1 (0 when its weights are there)
[ -f "$runs/sr-base-rgb-x2-stage1/weights.safetensors" ] && share1=0
steps1=$(( rate * left * share1 / 100 / 1000 )); steps2=$(( rate * left * (100 - share1) / 100 / 1000 ))
echo "probe: ${probe_steps} steps in ${probe}s (${startup}s start-up); stage 1: ${steps1} steps, stage 2: ${steps2} steps"
keep() {  # each stage's files go to $out as soon as it ends (a call cut short keeps stage 1)
  cp "$runs/$1/weights.safetensors" "$out/$1.safetensors"
  [ ! -f "$runs/$1/log.csv" ] || cp "$runs/$1/log.csv" "$out/$1.log.csv"
}
train --only rgb_x2_base_stage1 --steps "$steps1" --out-dir "$runs"
keep sr-base-rgb-x2-stage1
train --only rgb_x2_base --steps "$steps2" --out-dir "$runs"
keep sr-base-rgb-x2
echo "done in $(( $(date +%s) - start ))s: $(ls "$out")"
