"""Reading run records back: the committed records the book shows, and their chapter manifests.

The committed records are the chapters themselves, executed by `tools/run_chapters.py`: one folder
per chapter, `results/records/chNN/<run-name>.json`, with a `chapter.json` manifest beside them."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

# The committed records, with their provenance (results/README.md says how they were made).
# Chapters and the book read results from here, never from a tiny smoke run.
RESULTS_DIR = Path(__file__).resolve().parent.parent.parent / "results" / "records"
MANIFEST_FILE = "chapter.json"  # tools/run_chapters.py: one per chapter folder
MAKE_RECORDS = "python tools/run_chapters.py --profile cpu --data-dir DIR"


def chapter_dir(chapter: int, results_dir: str | os.PathLike | None = None) -> Path:
    """The folder of chapter `chapter`'s records: `results/records/chNN`."""
    # RESULTS_DIR is read at call time, so tests and pages can point it elsewhere
    return Path(results_dir or RESULTS_DIR) / f"ch{chapter:02d}"


def committed_records(pattern: str = "*", results_dir: str | os.PathLike | None = None,
                      chapter: int | None = None) -> list[dict[str, Any]]:
    """The committed records whose file name matches `pattern`, in every chapter folder (or only
    `chNN/` when `chapter` is given), sorted by path. Chapter manifests are skipped.

    Each record gains `record_file`, its path relative to the records folder (for example
    `ch06/sst2-full-s42.json`). A record of a capped rehearsal (`caps`, from D2L_MAX_STEPS & co.)
    or of the tiny profile is not a result: it raises `ValueError` naming the file. Profiles
    read as written: `real` (before the cpu/gpu split), `cpu` or `gpu`."""
    root = Path(results_dir or RESULTS_DIR)
    folder = chapter_dir(chapter, root) if chapter is not None else root
    if not folder.is_dir():
        return []
    paths = sorted((p for p in folder.rglob(f"{pattern}.json") if p.name != MANIFEST_FILE),
                   key=lambda p: p.relative_to(root).as_posix())
    records = []
    for path in paths:
        record = json.loads(path.read_text())
        if record.get("caps"):
            raise ValueError(f"{path}: a rehearsal run, capped by {record['caps']} "
                             "(D2L_MAX_STEPS & co.): its numbers are not results. Remove it "
                             "from results/records and commit a record of an uncapped run.")
        if record.get("profile") == "tiny":
            raise ValueError(f"{path}: a tiny-profile smoke run is not a result. Remove it from "
                             "results/records.")
        record["record_file"] = path.relative_to(root).as_posix()
        records.append(record)
    return records


def run_name(record: dict[str, Any]) -> str | None:
    """The run's name: its record file without folder and `.json` (`sst2-full-s42`)."""
    name = record.get("record_file")
    return Path(name).stem if name else None


def chapter_manifest(chapter: int, results_dir: str | os.PathLike | None = None
                     ) -> dict[str, Any] | None:
    """Chapter `chapter`'s `chapter.json` (command, profile, data, hardware, wall time, records),
    or None when the chapter has not been run into results/records yet."""
    path = chapter_dir(chapter, results_dir) / MANIFEST_FILE
    return json.loads(path.read_text()) if path.is_file() else None


def chapter_time_minutes(chapter: int, results_dir: str | os.PathLike | None = None
                         ) -> float | None:
    """How long the chapter took, measured: the notebook's wall time from its manifest, else the
    sum of its records' wall times (training and evaluation only). None when nothing is there."""
    manifest = chapter_manifest(chapter, results_dir)
    if manifest and manifest.get("notebook_wall_time_s") is not None:
        return round(manifest["notebook_wall_time_s"] / 60, 1)
    records = committed_records(results_dir=results_dir, chapter=chapter)
    seconds = [r["wall_time_s"] for r in records if r.get("wall_time_s") is not None]
    return round(sum(seconds) / 60, 1) if seconds else None


def no_records_message(chapter: int | None = None) -> str:
    """One line that says how to make the missing records."""
    where = f"results/records/ch{chapter:02d}" if chapter is not None else "results/records"
    option = f" --chapters {chapter}" if chapter is not None else ""
    return f"No records in {where} yet. Make them with `{MAKE_RECORDS}{option}`."


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def metric_values(record: dict[str, Any]) -> list[float]:
    """The main metric on the main split at every evaluation, in order of step: the
    evaluations between epochs (`eval_log`) and at their ends (`history`) together; a history
    without steps (chapter 1's loop) in its own order; else the final `main_metric` alone.
    Missing and NaN values are left out."""
    main = record["main_metric"]
    entries = [*(record.get("eval_log") or []), *(record.get("history") or [])]
    if entries and all(entry.get("step") is not None for entry in entries):
        entries = sorted({e["step"]: e for e in entries}.values(), key=lambda e: e["step"])
    values = [value for entry in entries if isinstance(entry.get(main["split"]), dict)
              and _finite(value := entry[main["split"]].get(main["name"]))]
    return values or ([main["value"]] if _finite(main.get("value")) else [])


def best_and_last(record: dict[str, Any]) -> tuple[float, float]:
    """(best, last) of the main metric on the main split over the run's evaluations.

    Last is the record's `main_metric.value` (the final evaluation); best is the highest value
    at any evaluation (every GLUE metric the book uses is higher-is-better). Best is picked on
    the dev set it is reported on, so it flatters a run a little; last is what the run ends at."""
    values = metric_values(record)
    final = record["main_metric"].get("value")
    last = final if _finite(final) else (values[-1] if values else math.nan)
    best = max([*values, last]) if _finite(last) else (max(values) if values else math.nan)
    return best, last
