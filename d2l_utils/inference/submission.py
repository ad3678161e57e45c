"""GLUE leaderboard files: one TSV per test split (`CoLA.tsv`, `MNLI-m.tsv`, `AX.tsv`, ...) with
the columns `index` and `prediction`: label names for MNLI, AX, QNLI and RTE, class ids (0/1) for
CoLA, SST-2, MRPC, QQP and WNLI, a score for STS-B."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..metrics import predictions_from_logits
from ..tasks import TaskSpec, TestSplit
from ..training.saving import write_text_atomic


def write_submission(task: TaskSpec, split: TestSplit, index: list[str], logits: np.ndarray,
                     folder: str | os.PathLike) -> Path:
    """Write the leaderboard file of one test split into `folder`; returns its path. Its
    `prediction` column holds label names or class ids as the leaderboard wants them for `task`,
    or STS-B's score with three decimals."""
    predicted = predictions_from_logits(task, logits)
    values = ([f"{score:.3f}" for score in predicted] if task.is_regression
              else [task.label_names[i] if task.submit_names else str(int(i)) for i in predicted])
    rows = ["index\tprediction", *(f"{i}\t{value}" for i, value in zip(index, values, strict=True))]
    path = Path(folder) / split.submission
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "\n".join(rows) + "\n")
    return path
