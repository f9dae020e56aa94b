"""The run's ``log.csv``: one row per logged step (counters, timings, the total and every named loss)
and one per validation (``val_mel``). Resumed runs append; a header line is written whenever the columns
differ from those of the file's latest header."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path
from typing import Any

#: counters and timings, before the losses
STAT_COLUMNS = ["step", "time", "cpu_s", "audio_h", "sec_per_step", "audio_s_per_s", "gnorm", "total"]
#: the loss (and code-restart) columns in the order logs have had them; losses added since follow
LOSS_COLUMNS = ["mel", "adv", "fm", "disc", "text", "recon_commit", "recon_codebook", "reasoning_commit",
                "reasoning_codebook", "reasoning_mel", "ctc", "recon0_ctc", "distill", "preserve",
                "revived_reasoning", "revived_recon", "stft", "f0", "wfeat"]


def log_columns(loss_names: Iterable[str]) -> list[str]:
    """The columns of a log of these losses: counters, the losses (known ones in their old places), val_mel."""
    cols = STAT_COLUMNS + LOSS_COLUMNS
    return cols + [n for n in dict.fromkeys(loss_names) if n not in cols] + ["val_mel"]


def last_header(log_path: Path) -> list[str]:
    """The column names of ``log.csv``'s latest header line (resumed runs append to the file)."""
    header: list[str] = []
    with open(log_path, encoding="utf-8") as f:
        for line in f:
            if line.startswith("step,"):
                header = line.rstrip("\r\n").split(",")
    return header


class TrainLog:
    """Appends rows to ``path``; the header goes in with the first row when the file is new or its latest
    header names other columns."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        self._new = not path.exists()
        self._file = open(path, "a", newline="")
        self._writer: csv.DictWriter | None = None

    def row(self, row: dict[str, Any]) -> None:
        """One step's row (names not among the columns are dropped)."""
        if self._writer is None:
            self._writer = csv.DictWriter(self._file, fieldnames=self.columns, extrasaction="ignore")
            if self._new or last_header(self.path) != self.columns:
                self._writer.writeheader()  # a new log, or the columns changed since the file's latest header
        self._writer.writerow(row)
        self._file.flush()

    def validation(self, step: int, val_mel: float) -> None:
        """A validation row; written only after this process's first step row (as logs always had it)."""
        if self._writer is not None:
            self._writer.writerow({"step": step, "val_mel": round(val_mel, 4)})
            self._file.flush()

    def close(self) -> None:
        self._file.close()
