#!/usr/bin/env bash
# One prepared device run (device tool), joint-training layout: CUDA tests (random weights), the shipped
# model on CUDA (scripts/gpu_check_model.py), GPU throughput, then a joint burst of
# recipes/codec_v1_joint_gpu.json in two segments of SEG_MINUTES each. After each segment the weight
# average of the codec's trained parts comes back through $OUT (mid/, end/: ≤ 15 MB shards + state.json;
# end/ also the discriminators), with log.csv; the frozen reasoning branch is taken from the start
# checkpoint at home: python -c "...merge_shards(Path('OUT/end'), Path('DEST'),
# base=Path('checkpoints/codec_v1/modules.safetensors'))". RESUME_ONLY=1 (a second call while the machine
# is still warm, within its 30 s) skips the checks and runs one more segment from runs/gpu_joint into
# $OUT/more.
# Carry: .whl (soundfile, soxr, cffi, pycparser wheels for the device's Python 3.12) and gpu_pack
# (python -m reasoningcodec.train.pack data/corpus gpu_pack --mb 31 --recipe recipes/codec_v1_joint_slow.json
# --init checkpoints/codec_v1).
# The working tree travels too (≤ 64 MiB with the carried folders), and the committed weights alone are
# ~98 MB: run `bash scripts/device_tree.sh hide` before the device call and
# `bash scripts/device_tree.sh restore` after it; the call's command is
#   SEG_MINUTES=2.8 SEG_MINUTES_INT=3 bash scripts/gpu_burst_joint.sh
# 2026-11-27 on one H100: 9 CUDA tests 8 s, model check + throughput ~40 s, two 2.8-minute segments;
# 416 s in all (RESULTS.md, carried over).
set -u
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
SEGMENTS="mid end"
if [ "${RESUME_ONLY:-0}" = 1 ]; then
  SEGMENTS=more
else
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
timeout ${TEST_TIMEOUT:-100} python3 -m pytest -q -x -p no:cacheprovider -m cuda tests/test_codec.py 2>&1 | tail -4
timeout 60 python3 scripts/gpu_check_model.py gpu_pack/init/modules.safetensors \
  src/reasoningcodec/pretrained/default/config.json examples/data/speech_sample.flac 2>&1 | grep -v Warning
timeout 60 python3 scripts/gpu_throughput.py 2>&1 | grep -v Warning
fi
FROZEN="('null_reasoning', 'reasoning_encoder.', 'reasoning_vq.')"
for seg in $SEGMENTS; do
  only="('codec_ema.', 'disc.')"
  [ $seg = mid ] && only="('codec_ema.',)"
  timeout $(( ${SEG_MINUTES_INT:-3} * 60 + 90 )) python3 -m reasoningcodec.train recipes/codec_v1_joint_gpu.json \
    --device cuda --quiet --max-minutes ${SEG_MINUTES:-2.8} 2>&1 | grep -v Warning | tail -3
  python3 -c "from pathlib import Path; from reasoningcodec.train.export import export_shards as e; e(Path('runs/gpu_joint'), Path('$OUT/$seg'), only=$only, skip=$FROZEN)" || exit 1
  tail -1 runs/gpu_joint/log.csv
done
cp runs/gpu_joint/log.csv $OUT/
ls -la $OUT $OUT/*/
