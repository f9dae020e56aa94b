"""Data recipes for the uniaudio_lm tasks: raw 24 kHz clips + metadata, then codec tokens + LM manifests.

``python -m uniaudio_lm.recipes build OUT_DIR [--recipes a,b] [--scale 1.0] [--seed 0]`` writes
``OUT_DIR/audio/<recipe>/<split>/*.flac`` (24 kHz mono, 1-6 s) and ``OUT_DIR/<split>/<recipe>.jsonl``
(``split`` = ``train`` | ``test``). Each row has ``task`` (a uniaudio_lm task name), ``recipe``, ``audio``
(the target clip, or the input clip of understanding tasks; paths relative to OUT_DIR) and, as relevant,
``text``, ``language``, ``caption``, ``question``, ``answer``, ``voice`` (voice prompt clip), ``source``
(input clip of edit/denoise/vc/spoken_qa_speech), ``instruction``, ``lyric``, ``label``, ``labels``,
``demos`` (``[{"audio"|"source": clip, "label": ...}]``), ``style``, ``speaker``, ``sound_tag``,
``instrument``, ``tempo_bpm``; few-shot classification rows and their demos also carry the true
``class`` and its source ``recording`` (their ``label`` is a meaningless word, see ``recipes.episodes``).

``python -m uniaudio_lm.recipes tokenize OUT_DIR [--model DIR] [--recon-codebooks N]`` encodes every clip
and writes ``OUT_DIR/tokens/{train,test}.jsonl`` in the :class:`uniaudio_lm.data.Manifest` format
(``audio`` -> ``codes``; ``voice``/``source``/demo paths -> code files) plus ``tokens/info.json``.

Sources: espeak-ng, FluidSynth + FluidR3_GM, the music21 corpus, Tux Paint stamp sounds, the shipped
sentence lists and FSDD train recordings (see docs/DATA.md). Sentences, sound classes, QA items and
music scores are split into train/test by seed-independent hashes, so test items never occur in train.
"""

from .build import RECIPES, Recipe, build, check, read_rows, summary
from .common import RecipeError, sentence_split
from .tokenize import code_path, manifest_row, tokenize

__all__ = ["RECIPES", "Recipe", "RecipeError", "build", "check", "code_path", "manifest_row", "read_rows", "sentence_split",
           "summary", "tokenize"]
