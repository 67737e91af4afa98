#!/usr/bin/env bash
# Own virtual environment for benchmarks/through_plane.py: the external baseline ECLARE
# (PyPI `eclare`, GPL-3.0) and nilearn (for the MNI152 template it ships inside its package).
# Neither is a dependency of sr_domains, and the library never imports them.
#
#   bash benchmarks/through_plane_setup.sh          # creates benchmarks/.venv-through-plane
#   benchmarks/.venv-through-plane/bin/python benchmarks/through_plane.py
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
VENV="${VENV:-$HERE/.venv-through-plane}"
PY="${PYTHON:-python3}"

"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
# The CPU build of torch first: a bare `torch` requirement would pull a multi-GB CUDA build.
"$VENV/bin/python" -m pip install -q "torch==2.13.0"
# sr_domains itself (this checkout, editable) with the medical extra.
"$VENV/bin/python" -m pip install -q -e "$REPO[medical]"
# The baselines and the data: ECLARE (pins scipy==1.11.4 and radifox-utils) and nilearn.
"$VENV/bin/python" -m pip install -q eclare nilearn scikit-image
"$VENV/bin/python" - <<'PY'
import importlib.metadata as md
for name in ("torch", "eclare", "nilearn", "scipy", "scikit-image", "sr-domains"):
    print(f"{name:14s} {md.version(name)}")
PY
echo "ready: $VENV/bin/python benchmarks/through_plane.py"
