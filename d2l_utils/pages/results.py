"""The Results page's tables, drawn from committed run records: the method x task comparison,
which differences the noise can explain (`compare_methods`), and where every record came from.
Every table is a DataFrame with a plain RangeIndex; `show_table` renders it without the index.
A chapter cell reads, for example:

    records = committed_records(chapter=6)
    show_table(pivot_table(records))
    show_table(compare_methods(records))
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from itertools import combinations
from typing import Any

import pandas as pd
from pandas.io.formats.style import Styler

from ..stats import paired_bootstrap, welch_p
from .plots import (
    method_label,
    method_order,
    metric_column,
    ordered_tasks,
    record_seed,
    records_table,
    task_name,
)
from .records import best_and_last, chapter_manifest


def show_table(table: pd.DataFrame, digits: int = 3) -> Styler:
    """Render a table without the pandas index: numbers to `digits` decimals, thousands
    separated, empty cells blank."""
    return table.style.hide(axis="index").format(precision=digits, thousands=",", na_rep="")


def _groups(records: Sequence[dict[str, Any]], labels: Sequence[str] | None = None
            ) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """task -> label (the method's, unless `labels` names each run) -> records (tasks in the
    book's order, SST-2, CoLA, STS-B first; methods in the library's: full, freeze, bitfit,
    lora, prefix, P-Tuning v2, prompt tuning)."""
    groups: dict[str, dict[str, list[dict[str, Any]]]] = {}
    named = zip(records, labels if labels is not None else map(method_label, records))
    for record, label in sorted(named, key=lambda item: method_order(item[0])):
        groups.setdefault(record["task"], {}).setdefault(label, []).append(record)
    return {task: groups[task] for task in ordered_tasks([r["task"] for r in records])}


def _cell(runs: Sequence[dict[str, Any]], digits: int) -> str:
    if len(runs) == 1:
        return " / ".join(f"{value:.{digits}f}" for value in best_and_last(runs[0]))
    bests = [best_and_last(r)[0] for r in runs]
    return (f"{statistics.mean(bests):.{digits}f} ± {statistics.stdev(bests):.{digits}f} "
            f"(n={len(bests)})")


def pivot_table(records: Sequence[dict[str, Any]], digits: int = 3) -> pd.DataFrame:
    """One row per method, one column per task named with its metric (`SST-2 accuracy`).

    A cell is `best / last` of the main metric over the run's evaluations. Where a method ran
    with several seeds, it is `mean ± sd (n=3)` of best over the seeds (sample sd)."""
    methods = list(dict.fromkeys(method_label(r) for r in sorted(records, key=method_order)))
    table = pd.DataFrame({
        metric_column(task, next(iter(by_method.values()))[0]["main_metric"]["name"]):
            {method: _cell(runs, digits) for method, runs in by_method.items()}
        for task, by_method in _groups(records).items()})
    return table.reindex(methods).fillna("").rename_axis("method").reset_index()


def _last(run: dict[str, Any]) -> float:
    return best_and_last(run)[1]


def _paired_runs(runs_a: Sequence[dict[str, Any]], runs_b: Sequence[dict[str, Any]]
                 ) -> list[tuple[list, list, list]]:
    """(predictions A, predictions B, labels) of the main split for every seed both methods ran
    with per-example predictions on the same examples."""
    def by_seed(runs: Sequence[dict[str, Any]]) -> dict[Any, dict[str, list]]:
        return {record_seed(r): r["predictions"][r["main_metric"]["split"]] for r in runs
                if r["main_metric"]["split"] in r.get("predictions", {})}

    a, b = by_seed(runs_a), by_seed(runs_b)
    return [(a[s]["predictions"], b[s]["predictions"], a[s]["labels"]) for s in a
            if s in b and a[s]["labels"] == b[s]["labels"]]


def compare_methods(records: Sequence[dict[str, Any]], task: str | None = None, *,
                    adjacent: bool = True, baseline: str | None = None,
                    alpha: float = 0.05, labels: Sequence[str] | None = None) -> pd.DataFrame:
    """Which methods the records can tell apart on a task (every task when `task` is None).

    Methods are ranked by their last evaluation (the final weights; the mean over seeds).
    For each pair (`baseline`, a method label such as "head only": every method against it;
    else `adjacent`: each method and the next one in the ranking; else every pair),
    `d2l_utils.stats` tests the gap against both kinds of noise: the dev set (a paired bootstrap
    over its examples, from the per-example predictions of the runs that share a seed) and, where
    both methods ran with several seeds, the seeds (Welch's t-test). A pair is told apart when
    every available test gives p < `alpha`. Gaps and intervals are in points (hundredths).
    `labels` names each record's group where the method does not (two runs of one method)."""
    rows = []
    for name, by_method in _groups(records, labels).items():
        if task is not None and name != task:
            continue
        ranked = sorted(by_method.items(), key=lambda item: -statistics.mean(map(_last, item[1])))
        metric = ranked[0][1][0]["main_metric"]["name"] if ranked else None
        if baseline is not None:
            base = [item for item in ranked if item[0] == baseline]
            pairs = [(item, base[0]) for item in ranked if base and item[0] != baseline]
        else:
            pairs = zip(ranked, ranked[1:]) if adjacent else combinations(ranked, 2)
        for (a, runs_a), (b, runs_b) in pairs:
            gap = statistics.mean(map(_last, runs_a)) - statistics.mean(map(_last, runs_b))
            shared = _paired_runs(runs_a, runs_b)
            paired = paired_bootstrap(metric, shared) if shared else None
            seeds = welch_p([_last(r) for r in runs_a], [_last(r) for r in runs_b])
            p_values = [p for p in (paired and paired.p_value, seeds) if p is not None]
            verdict = ("unknown" if not p_values else
                       "yes" if max(p_values) < alpha else "cannot tell apart")
            rows.append({
                "task": task_name(name), "method A": a, "method B": b,
                "gap (points)": round(100 * gap, 2),
                "95% interval (points)": (f"{100 * paired.low:.1f} to {100 * paired.high:.1f}"
                                          if paired else None),
                "p, dev examples": None if paired is None else round(paired.p_value, 3),
                "p, seeds": None if seeds is None else round(seeds, 3),
                "tell apart?": verdict})
    columns = ["task", "method A", "method B", "gap (points)", "95% interval (points)",
               "p, dev examples", "p, seeds", "tell apart?"]
    return pd.DataFrame(rows, columns=columns)


def runs_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """One row per run: its name, task, method, seed, metric with best and last, size, time."""
    return records_table(records)[["run", "task", "method", "seed", "metric", "best", "last",
                                   "trainable", "train examples", "epochs", "wall time s"]]


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
        seconds = manifest.get("notebook_wall_time_s", run.get("notebook_wall_time_s"))
        rows.append({
            "chapter": chapter, "notebook": run.get("notebook"), "profile": run.get("profile"),
            "data": run.get("data_dir"), "started": run.get("started"), "records": len(runs),
            "minutes": None if seconds is None else round(seconds / 60, 1),
            "cpu": machine.get("cpu"), "cores": machine.get("cores"),
            "gpu": machine.get("gpu") or "none",
            "load before / after": f"{load.get('before', '?')} / {load.get('after', '?')}"
            if load else None})
    columns = ["chapter", "notebook", "profile", "data", "started", "records", "minutes", "cpu",
               "cores", "gpu", "load before / after"]
    return pd.DataFrame(rows, columns=columns)
