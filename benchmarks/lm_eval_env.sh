#!/usr/bin/env bash
# lm-evaluation-harness in its own environment, benchmarks/.venv-lmeval: lm-eval's pins clash with greenfm's
# (it would downgrade python-dateutil), so it gets a venv of its own. A .pth file puts greenfm's environment
# (.venv, or $GREENFM_VENV) last on sys.path: lm-eval's own pins win, torch and transformers come from ours.
# tests/test_lm_eval_harness.py runs the harness from here (and skips, saying so, when it is missing).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
ours="${GREENFM_VENV:-$root/.venv}"
venv="$root/benchmarks/.venv-lmeval"
site="$("$ours/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
python3 -m venv "$venv"
own_site="$("$venv/bin/python" -c 'import site; print(site.getsitepackages()[0])')"
echo "$site" > "$own_site/zz_greenfm.pth"
"$venv/bin/pip" install -q "lm-eval[hf]==0.4.13"
"$venv/bin/python" -c 'import lm_eval, torch, transformers; print("lm-eval", lm_eval.__version__ if hasattr(lm_eval, "__version__") else "ok", "torch", torch.__version__)'
