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

    Each record gains a `record_file` key naming the file it came from. A record of a capped
    rehearsal (`caps`, from D2L_MAX_STEPS & co.) or of the tiny profile is not a result: it
    raises `ValueError` naming the file. Profiles read as written: `real` (before the cpu/gpu
    split), `cpu` or `gpu`.
    """
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    records = []
    for path in sorted(folder.glob(f"{pattern}.json")):
        record = json.loads(path.read_text())
        if record.get("caps"):
            raise ValueError(f"{path}: a rehearsal run, capped by {record['caps']} "
                             "(D2L_MAX_STEPS & co.): its numbers are not results. Remove it "
                             "from results/records and commit a record of an uncapped run.")
        if record.get("profile") == "tiny":
            raise ValueError(f"{path}: a tiny-profile smoke run is not a result. Remove it from "
                             "results/records.")
        record["record_file"] = path.name
        records.append(record)
    return records
