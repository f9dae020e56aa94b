#!/usr/bin/env bash
# The device tool sends the working tree (≤ 64 MiB with the carried folders), and the committed weights
# alone are ~98 MB. `bash scripts/device_tree.sh hide` untracks them for a device call (index only: the
# files stay on disk, .git/info/exclude keeps them from travelling as untracked files);
# `bash scripts/device_tree.sh restore` puts them back in the index. Never commit between the two.
set -eu
cd "$(git rev-parse --show-toplevel)"
W="checkpoints/codec_v1/modules.safetensors src/reasoningcodec/pretrained/default/model.safetensors
src/uniaudio_lm/pretrained/default/model.safetensors"
EX=.git/info/exclude
case "${1:-}" in
  hide)
    git rm -q --cached $W
    for f in $W; do grep -qxF "/$f" "$EX" 2>/dev/null || echo "/$f" >> "$EX"; done
    echo "untracked for the device call: $(echo $W | wc -w) weight files; bytes of the tree that travels (add the carried folders):"
    git ls-files -co --exclude-standard -z | xargs -0 du -cb | tail -1
    ;;
  restore)
    git reset -q -- $W
    for f in $W; do grep -vxF "/$f" "$EX" > "$EX.tmp" || true; mv "$EX.tmp" "$EX"; done
    git status --short -- $W
    echo "restored"
    ;;
  *)
    echo "usage: bash scripts/device_tree.sh hide|restore" >&2
    exit 2
    ;;
esac
