#!/usr/bin/env bash
# The GPU measurements of pretraining, in one run that fits the device machine's lease (about 8 minutes on an
# H100/H200): greenfm's trainer against nanoGPT (same shape, same GPU, one process per measurement), then the
# NCCL/DDP and bf16-vs-fp32 checks. Uses the machine's own torch, with this repository on PYTHONPATH: nothing
# is installed. Results go to $OUT (the device tool's folder that comes back) or benchmarks/results/.
#
# nanoGPT is not part of greenfm: put a copy of its folder (model.py) where NANOGPT points, e.g. copy
# ../shared/anchors/nanogpt to .anchors/nanogpt (an ignored folder) and carry it to the machine.
#
#   bash benchmarks/device_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
out="${OUT:-benchmarks/results}"
nanogpt="${NANOGPT:-.anchors/nanogpt}"
mkdir -p "$out"
python3 -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available() and torch.cuda.get_device_name(0))'
nvidia-smi >"$out/nvidia-smi.txt" 2>&1 || true
status=0
# 2 implementations × 1 batch size: each compiles (about a minute) and times 30 steps after 10 warm-up steps
timeout 330 python3 benchmarks/pretrain.py --reference "$nanogpt" --batch-sizes 32 --out "$out" 2>&1 | tee "$out/pretrain.log" || status=1
timeout 150 python3 benchmarks/gpu_checks.py --out "$out" 2>&1 | tee "$out/gpu-checks.log" || status=1
exit $status
