#!/usr/bin/env bash
# Release a training run's weights as the package's default codec, in two steps.
#
#   bash scripts/release.sh gate [RUN_DIR]
#       Copies RUN_DIR/last/codec (default runs/codec_v1_joint_slow) to runs/release/codec and scores it
#       beside the installed default: held-out training-source clips (scripts/heldout_eval.py)
#       and our codec alone on the eval set (benchmarks/reconstruction.py); ~1.5 min in all. Nothing is changed.
#   bash scripts/release.sh ship MODEL_ID
#       Makes runs/release/codec the default as MODEL_ID (fp16 + entropy tables), keeps the previous
#       default's eval tables as benchmarks/results/reconstruction_<old id>.*, re-tokenizes data/lm,
#       fine-tunes and installs uniaudio_lm on the new tokens and runs lm_tasks, beside
#       benchmarks/run_all.py; then rebuilds benchmarks/RESULTS.md. About 41 min on 2 cores (rc-v6-s29200).
#       EXPORT_CHECKPOINT=1 also overwrites checkpoints/codec_v1 from the recipe's run (only when it is
#       >= 3,000 steps past the committed one: scripts/checkpoint_policy.py; a codec equal to the new default
#       is left out and named instead, so git stores it once; every overwrite stays in git history).
#
# Stop the training run first (after one of its saves): the benchmarks need the cores, and the copy must
# not race a save. Environment: PY (default .venv/bin/python), RECIPE (default
# recipes/codec_v1_joint_slow.json), LM_STEPS (default 1200), LM_RECIPE (default
# recipes/uniaudio_small_cpu.json).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
REL=runs/release
RECIPE=${RECIPE:-recipes/codec_v1_joint_slow.json}
LM_RECIPE=${LM_RECIPE:-recipes/uniaudio_small_cpu.json}
LM_STEPS=${LM_STEPS:-1200}
DEFAULT=src/reasoningcodec/pretrained/default

die() { echo "release.sh: $*" >&2; exit 1; }
training_running() { pgrep -f "reasoningcodec[.]train " >/dev/null; }
model_id() { "$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['model_id'])" "$1/config.json"; }

cmd=${1:-}
case "$cmd" in
gate)
    run=${2:-runs/codec_v1_joint_slow}
    [ -f "$run/last/codec/config.json" ] || die "no snapshot at $run/last/codec (has the run saved yet?)"
    training_running && die "a reasoningcodec.train process is running: stop it after a save, then gate"
    rm -rf "$REL" && mkdir -p "$REL"
    cp -r "$run/last/codec" "$REL/codec"
    new=$(model_id "$REL/codec")
    old=$(model_id "$DEFAULT")
    echo "gate: $new (candidate) against $old (installed)"
    OMP_NUM_THREADS=1 "$PY" scripts/heldout_eval.py "$REL/codec" "$DEFAULT" --json "$REL/heldout.json" \
        > "$REL/heldout.log" 2>&1 &
    held=$!
    OMP_NUM_THREADS=1 "$PY" benchmarks/reconstruction.py --codecs ours --ours-codebooks 8 --coding packed \
        --model "$REL/codec" --out "$REL/eval" --quiet > "$REL/eval.log" 2>&1 || die "eval failed: see $REL/eval.log"
    wait "$held" || die "held-out eval failed: see $REL/heldout.log"
    cat "$REL/heldout.log"
    "$PY" - "$REL/eval/reconstruction.json" benchmarks/results/reconstruction.json <<'EOF'
import json, sys

new, old = (json.load(open(p)) for p in sys.argv[1:3])
print(f"eval set, ours@k8: {new['meta'].get('ours_model_id')} (shipped {old['meta'].get('ours_model_id')} in brackets)")
def ours_k8(codecs):  # "ours@k8" (auto coding) or "ours@k8-packed": the same codes, so the same quality
    return next((v for k, v in codecs.items() if k.split("-")[0] == "ours@k8"), {})


for cat, codecs in new["summary"].items():
    n, o = ours_k8(codecs), ours_k8(old["summary"].get(cat, {}))
    cells = [f"{m} {n[m]:.3f}" + (f" ({o[m]:.3f})" if o.get(m) is not None else "")
             for m in ("pesq_wb", "pesq_nb", "stoi", "visqol", "mel_distance") if n.get(m) is not None]
    print(f"  {cat:7s} " + ", ".join(cells))
EOF
    ;;
ship)
    id=${2:-}
    [ -n "$id" ] || die "usage: release.sh ship MODEL_ID"
    RUN_DIR_FOR_EXPORT=$("$PY" -c "import json,sys; print(json.load(open(sys.argv[1]))['out_dir'])" "$RECIPE")
    [ -f "$REL/codec/config.json" ] || die "run 'release.sh gate' first"
    [ -d data/lm ] || die "data/lm is missing: build it (python -m uniaudio_lm.recipes build data/lm)"
    training_running && die "a reasoningcodec.train process is running: stop it first"
    old=$(model_id "$DEFAULT")
    [ "$old" != "$id" ] || die "$id is already the installed default"
    log=$REL/ship.log
    echo "ship: $id replaces $old (log: $log)"
    "$PY" -m reasoningcodec.train "$RECIPE" --ship "$REL/codec" "$id" >> "$log" 2>&1
    "$PY" scripts/pin_tokens.py >> "$log" 2>&1  # tests/test_pinned_model.py checks the new default's tokens
    if [ "${EXPORT_CHECKPOINT:-0}" = 1 ]; then
        # every committed weight version stays in git: only a checkpoint >= 3,000 steps past the committed
        # one, and never the weights the new default already holds (the default is the run's weight average)
        "$PY" scripts/checkpoint_policy.py "$RUN_DIR_FOR_EXPORT" checkpoints/codec_v1 "$DEFAULT" --by-reference \
            || die "checkpoint not exported (see above)"
        "$PY" -m reasoningcodec.train "$RECIPE" --export checkpoints/codec_v1 --codec-from "$DEFAULT" >> "$log" 2>&1
    fi
    for ext in json md; do
        cp benchmarks/results/reconstruction.$ext "benchmarks/results/reconstruction_$old.$ext"
    done
    echo "$(date +%T) re-tokenizing data/lm"
    "$PY" -m uniaudio_lm.recipes tokenize data/lm --recon-codebooks 4 --force >> "$log" 2>&1
    lm_out=runs/uniaudio_cpu_$id
    (
        "$PY" -m uniaudio_lm.train "$LM_RECIPE" --init-from src/uniaudio_lm/pretrained/default \
            --steps "$LM_STEPS" --out-dir "$lm_out" &&
        "$PY" -m uniaudio_lm install "$lm_out/model" --recon-codebooks 4 --duration-from data/lm/tokens/train.jsonl -f &&
        "$PY" benchmarks/lm_tasks.py --threads 1
    ) > "$REL/lm.log" 2>&1 &
    lm=$!
    echo "$(date +%T) uniaudio_lm fine-tune + lm_tasks (log $REL/lm.log) beside run_all (log $REL/run_all.log)"
    "$PY" benchmarks/run_all.py > "$REL/run_all.log" 2>&1 || die "run_all failed: see $REL/run_all.log"
    wait "$lm" || die "uniaudio_lm stage failed: see $REL/lm.log"
    "$PY" benchmarks/run_all.py --from-results >> "$REL/run_all.log" 2>&1
    echo "$(date +%T) done: update the README's numbers from benchmarks/RESULTS.md"
    ;;
*)
    sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || exit 2
    ;;
esac
