#!/usr/bin/env bash
# A second, training-only device burst (see gpu_burst.sh); resumes from runs/gpu on a warm machine,
# else from gpu_pack/init.
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
timeout ${TRAIN_TIMEOUT:-200} python3 -m reasoningcodec.train recipes/codec_v1_gpu.json --device cuda --quiet 2>&1 | grep -v Warning | tail -3
python3 -c "from pathlib import Path; from reasoningcodec.train.export import export_shards; export_shards(Path('runs/gpu'), Path('$OUT/ckpt'))"
cp runs/gpu/log.csv $OUT/ 2>/dev/null
