"""The Results page's tables, drawn from committed run records: the method x task comparison,
which differences the noise can explain, and where every record came from.

Every table is a DataFrame with a plain RangeIndex; `show_table` renders it without the index.
A chapter cell reads, for example:

    records = committed_records(chapter=6)
    show_table(pivot_table(records))
    show_table(separable(records, adjacent=True))
"""

from __future__ import annotations

import math
import os
import statistics
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from .plots import (
    method_label,
    method_order,
    metric_column,
    ordered_tasks,
    records_table,
    task_name,
)
from .records import best_and_last, chapter_manifest

PROPORTIONS = ("accuracy",)  # a share of examples: its noise is binomial
CORRELATIONS = ("matthews_correlation", "pearson", "spearmanr")


def show_table(table: pd.DataFrame, digits: int = 3) -> Styler:
    """Render a table without the pandas index: numbers to `digits` decimals, thousands
    separated, empty cells blank."""
    return (table.style.hide(axis="index")
            .format(precision=digits, thousands=",", na_rep=""))


def _groups(records: Sequence[dict[str, Any]]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """task -> method label -> records (tasks in the book's order, SST-2, CoLA, STS-B first;
    methods in the library's: full, freeze, bitfit, lora, prefix, P-Tuning v2, prompt tuning)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for record in sorted(records, key=method_order):
        groups.setdefault(record["task"], {}).setdefault(method_label(record), []).append(record)
    return {task: groups[task] for task in ordered_tasks([r["task"] for r in records])}


def _cell(runs: Sequence[dict[str, Any]], digits: int) -> str:
    values = [best_and_last(r) for r in runs]
    if len(values) == 1:
        best, last = values[0]
        return f"{best:.{digits}f} / {last:.{digits}f}"
    bests = [b for b, _ in values]
    return (f"{statistics.mean(bests):.{digits}f} ± {statistics.stdev(bests):.{digits}f} "
            f"(n={len(bests)})")


def pivot_table(records: Sequence[dict[str, Any]], digits: int = 3) -> pd.DataFrame:
    """One row per method, one column per task named with its metric (`SST-2 accuracy`).

    A cell is `best / last` of the main metric over the run's evaluations. Where a method ran
    with several seeds, it is `mean ± sd (n=3)` of best over the seeds (sample sd)."""
    groups = _groups(records)
    methods = list(dict.fromkeys(method_label(r) for r in sorted(records, key=method_order)))
    columns = {task: metric_column(task, next(iter(by_method.values()))[0]["main_metric"]["name"])
               for task, by_method in groups.items()}
    rows = []
    for method in methods:
        row = {"method": method}
        for task, by_method in groups.items():
            runs = by_method.get(method)
            row[columns[task]] = _cell(runs, digits) if runs else ""
        rows.append(row)
    return pd.DataFrame(rows, columns=["method", *columns.values()])


def _dev_examples(record: dict[str, Any]) -> int | None:
    split = record["main_metric"]["split"]
    n = record.get("data", {}).get("eval_examples", {})
    n = n.get(split) if isinstance(n, dict) else n
    return n if isinstance(n, int) and n > 0 else None


def _estimate(runs: Sequence[dict[str, Any]], which: str) -> tuple[float, float | None, str]:
    """(value, its standard error or None, where the error comes from) for one method."""
    values = [best_and_last(r)[0 if which == "best" else 1] for r in runs]
    value = statistics.mean(values)
    if len(values) >= 2:
        return value, statistics.stdev(values) / math.sqrt(len(values)), f"{len(values)} seeds"
    metric = runs[0]["main_metric"]["name"]
    n = _dev_examples(runs[0])
    if n is None:
        return value, None, "unknown"
    if metric in PROPORTIONS:
        return value, math.sqrt(max(value * (1 - value), 0.0) / n), f"binomial, {n:,} dev"
    if metric in CORRELATIONS and n > 3:
        return value, (1 - min(value * value, 1.0)) / math.sqrt(n - 1), f"correlation, {n:,} dev"
    return value, None, "unknown"


def separable(records: Sequence[dict[str, Any]], task: str | None = None, *,
              which: str = "best", adjacent: bool = False) -> pd.DataFrame:
    """Which methods the records can tell apart on a task (every task when `task` is None).

    Each method's value (`which`: its best or last evaluation, the mean over seeds) gets a
    standard error (SE): with 2 or more seeds, sd/sqrt(n) of its seeds (training noise); with one
    run of an accuracy, the binomial sqrt(p(1-p)/n_dev) (about 1.2-1.7 points on SST-2's 872
    sentences); with one run of a correlation (MCC, Pearson), the large-sample (1-r^2)/sqrt(n-1).
    Two methods cannot be told apart when their gap is below 2 SE of the difference,
    2 sqrt(SE_A^2 + SE_B^2) (Welch's rule for seeds). On one shared dev set that is cautious: the
    runs' errors are correlated. Gap and noise are in points (hundredths of the metric).
    `adjacent=True` compares each method only with the next one in the ranking.
    """
    rows = []
    for name, by_method in _groups(records).items():
        if task is not None and name != task:
            continue
        estimates = sorted(((method, *_estimate(runs, which))
                            for method, runs in by_method.items()), key=lambda e: -e[1])
        pairs = (zip(estimates, estimates[1:]) if adjacent else combinations(estimates, 2))
        for (a, va, sa, from_a), (b, vb, sb, from_b) in pairs:
            noise = 2 * math.sqrt(sa ** 2 + sb ** 2) if sa is not None and sb is not None else None
            gap = va - vb
            verdict = ("unknown" if noise is None
                       else "yes" if gap > noise else "cannot tell apart")
            rows.append({"task": task_name(name), "method A": a, "method B": b,
                         f"A ({which})": round(va, 4), f"B ({which})": round(vb, 4),
                         "gap (points)": round(100 * gap, 2),
                         "noise 2 SE (points)": None if noise is None else round(100 * noise, 2),
                         "noise from": from_a if from_a == from_b else f"{from_a}; {from_b}",
                         "tell apart?": verdict})
    columns = ["task", "method A", "method B", f"A ({which})", f"B ({which})", "gap (points)",
               "noise 2 SE (points)", "noise from", "tell apart?"]
    return pd.DataFrame(rows, columns=columns)


RUN_COLUMNS = ["run", "task", "method", "seed", "metric", "best", "last", "trainable",
               "train examples", "epochs", "wall time s"]


def runs_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: its name, task, method, seed, metric with best and last, size, time."""
    return records_table(records)[RUN_COLUMNS].reset_index(drop=True)


def _minutes(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds / 60, 1)


def chapter_runs_table(records: Sequence[dict[str, Any]],
                       results_dir: str | os.PathLike | None = None) -> pd.DataFrame:
    """One row per chapter that has records: its notebook, profile, data, when it started, its
    measured time, the machine and the load average before and after."""
    chapters = sorted({r["chapter_run"]["chapter"] for r in records if r.get("chapter_run")})
    rows = []
    for chapter in chapters:
        runs = [r for r in records if r.get("chapter_run", {}).get("chapter") == chapter]
        run = runs[0]["chapter_run"]
        manifest = chapter_manifest(chapter, results_dir) or {}
        machine = manifest.get("hardware") or run.get("hardware", {})
        load = run.get("load_average_1min", {})
        rows.append({
            "chapter": chapter, "notebook": run.get("notebook"), "profile": run.get("profile"),
            "data": run.get("data_dir"), "started": run.get("started"), "records": len(runs),
            "minutes": _minutes(manifest.get("notebook_wall_time_s",
                                             run.get("notebook_wall_time_s"))),
            "cpu": machine.get("cpu"), "cores": machine.get("cores"),
            "gpu": machine.get("gpu") or "none",
            "load before / after": f"{load.get('before', '?')} / {load.get('after', '?')}"
            if load else None})
    columns = ["chapter", "notebook", "profile", "data", "started", "records", "minutes", "cpu",
               "cores", "gpu", "load before / after"]
    return pd.DataFrame(rows, columns=columns)

