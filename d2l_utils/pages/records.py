"""Reading run records back: a finished run's record, and the real-run records the book shows."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from ..training.record import RECORD_FILE


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a run record from a file or from the run's output directory."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record here (a run writes {RECORD_FILE} when "
                                "it finishes)")
    return json.loads(path.read_text())


# Real-run records kept in the repository, with their provenance (results/README.md says how each
# was made). Chapters and the book read results from here, never from a tiny smoke run.
RESULTS_DIR = Path(__file__).resolve().parent.parent.parent / "results" / "records"


def committed_records(pattern: str = "*", results_dir: str | os.PathLike | None = None
                      ) -> list[dict[str, Any]]:
    """The committed real-run records whose file name matches `pattern` (sorted by name).

    Each record gains a `record_file` key naming the file it came from.
    """
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    records = []
    for path in sorted(folder.glob(f"{pattern}.json")):
        record = json.loads(path.read_text())
        record["record_file"] = path.name
        records.append(record)
    return records
