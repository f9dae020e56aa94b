#!/usr/bin/env bash
# One prepared device run (device tool): CUDA tests, GPU throughput, then a short training burst.
# Expects .whl/ (soundfile, soxr, cffi, pycparser wheels for the device's Python) and gpu_pack/
# (python -m reasoningcodec.train.pack ...) carried along. Results and the checkpoint go to $OUT.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
timeout 70 python3 -m pytest -q -x -p no:cacheprovider tests/test_codec.py -k cuda 2>&1 | tail -15 | tee $OUT/cuda_tests.txt
timeout 40 python3 scripts/gpu_throughput.py 2>&1 | tee $OUT/gpu_throughput.txt
timeout ${TRAIN_TIMEOUT:-215} python3 -m reasoningcodec.train recipes/codec_v1_gpu.json --device cuda --quiet 2>&1 | grep -v Warning | tail -5
python3 -c "from pathlib import Path; from reasoningcodec.train.export import export_shards; export_shards(Path('runs/gpu'), Path('$OUT/ckpt'))"
cp runs/gpu/log.csv $OUT/ 2>/dev/null
tail -3 runs/gpu/log.csv
ls -la $OUT $OUT/ckpt
