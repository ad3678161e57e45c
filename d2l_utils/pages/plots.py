"""Figures and tables drawn from run records (training curves, parameter tables, comparisons)
and from hyperparameter searches. Every figure takes records (the dicts `train` returns and
writes as `record.json`), so a chapter's own run and the committed real runs are drawn the same
way. Titles carry the provenance."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..hpo import SearchResult
from ..methods import METHODS
from ..tasks import TASKS
from .notebook import result_label
from .records import best_and_last, run_name

# Tasks in the order the book's tables and figures show them: chapter 6's first, then the rest.
TASK_ORDER = ("sst2", "cola", "stsb", *(t for t in TASKS if t not in ("sst2", "cola", "stsb")))


# Short, exact names for the metrics a record's main_metric may name.
METRIC_NAMES: dict[str, str] = {"accuracy": "accuracy", "matthews_correlation": "MCC",
                                "pearson": "Pearson", "spearmanr": "Spearman", "f1": "F1"}


def task_name(task: str) -> str:
    """The task as papers write it: SST-2, CoLA, STS-B, SNLI."""
    spec = TASKS.get(task)
    return spec.glue_dir if spec and spec.glue_dir else task.upper()


def metric_column(task: str, metric: str | None = None) -> str:
    """A column title such as `SST-2 accuracy`, `CoLA MCC`, `STS-B Pearson`. The metric is the
    task's main metric (`d2l_utils.tasks`) unless given."""
    metric = metric or (TASKS[task].main_metric if task in TASKS else "metric")
    return f"{task_name(task)} {METRIC_NAMES.get(metric, metric)}"


def ordered_tasks(tasks: Sequence[str]) -> list[str]:
    """The distinct `tasks` in the book's order (`TASK_ORDER`; unknown tasks last)."""
    order = {task: i for i, task in enumerate(TASK_ORDER)}
    return sorted(dict.fromkeys(tasks), key=lambda t: order.get(t, len(order)))


def method_label(record: dict[str, Any]) -> str:
    """method (+ the option that distinguishes it, such as the LoRA rank)."""
    method = record.get("method", "?")
    config = record.get("method_config", {})
    if method == "lora" and "r" in config:
        return f"lora r={config['r']}"
    if method == "freeze" and config.get("trainable_layers") == 0:
        return "head only"  # the pooler and the head on a frozen encoder: the baseline
    if method == "bitfit" and config.get("head") in ("bias", "frozen"):
        return "bitfit, head weights frozen"  # the course notebook's; the paper trains the head
    return method


def plot_training(records: Sequence[dict[str, Any]], labels: Sequence[str] | None = None,
                  title: str | None = None) -> plt.Figure:
    """Training loss (left) and the main dev metric (right) by optimizer step, a line a run."""
    labels = list(labels) if labels else [method_label(r) for r in records]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(10, 3.6))
    for record, label in zip(records, labels):
        steps, losses = zip(*record["loss_log"]) if record.get("loss_log") else ((), ())
        if len(steps) < 2:  # short runs: fall back to the per-epoch mean loss, where logged
            epochs = [h for h in record["history"] if "train_loss" in h]
            steps, losses = [h["step"] for h in epochs], [h["train_loss"] for h in epochs]
        ax_loss.plot(steps, losses, marker="." if len(steps) < 20 else None, label=label)
        # the main dev metric at mid-epoch evaluations and epoch ends, by step
        main = record["main_metric"]
        points = {e["step"]: e[main["split"]][main["name"]]
                  for e in [*record.get("eval_log", []), *record["history"]]}
        ax_metric.plot(sorted(points), [points[s] for s in sorted(points)], marker="o",
                       markersize=3, label=label)
    ax_loss.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
    if records:
        main = records[0]["main_metric"]
        ax_metric.set(xlabel="optimizer step", ylabel=main["name"],
                      title=f"{main['split']} {main['name']}")
    ax_metric.legend(fontsize=8)
    return _finish(fig, title or _provenance_title(records))


def _finish(fig: plt.Figure, title: str, fontsize: float = 9) -> plt.Figure:
    """Title the figure with its provenance and lay it out."""
    fig.suptitle(title, fontsize=fontsize)
    fig.tight_layout()
    return fig


def _provenance_title(records: Sequence[dict[str, Any]]) -> str:
    labels = sorted({result_label(r) for r in records})
    if len(labels) <= 1:
        return labels[0] if labels else ""
    # several runs: what they share, short enough for one or two lines at page width
    parts = [f"{len(records)} runs"]
    for key, suffix in (("model", ""), ("profile", " profile"), ("device", "")):
        values = sorted({str(r.get(key, "?")) for r in records})
        parts.append(", ".join(values) + suffix if len(values) <= 2 else f"{len(values)} {key}s")
    return textwrap.fill(" | ".join(parts), 110)


def params_table(counts: dict[str, dict[str, Any]],
                 expected: dict[str, int | tuple[int, str]] | None = None) -> pd.DataFrame:
    """One row per method: trainable, method and head parameters, share of the total.

    `counts` maps a row name to `count_parameters(model)`. `expected` (optional) adds the number a
    source reports and whether the library reproduces it: an int is compared with `trainable`,
    `(value, key)` with another count, e.g. `(294_912, "method_params")` for LoRA matrices only."""
    rows = []
    for name, c in counts.items():
        row = {"method": name, "trainable": c["trainable"], "method params": c["method_params"],
               "head params": c["head_params"], "total": c["total"],
               "trainable %": round(c["trainable_percent"], 3)}
        if expected is not None and name in expected:
            value, key = expected[name] if isinstance(expected[name], tuple) else (
                expected[name], "trainable")
            row["course notebook reports"] = f"{value:,} ({key.replace('_', ' ')})"
            row["match"] = "yes" if c[key] == value else "NO"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def record_seed(record: dict[str, Any]) -> int | None:
    """The run's seed (chapter 1's loop keeps it in `settings`)."""
    seed = record.get("seed")
    return seed if seed is not None else record.get("settings", {}).get("seed")


def records_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The comparison table: metric (best and last evaluation), trainable parameters, time,
    throughput and memory a run. `value` is the last evaluation, as `last`."""
    rows = []
    columns = ["run", "task", "method", "model", "seed", "metric", "best", "last", "value",
               "all metrics", "trainable", "trainable %", "train examples", "epochs",
               "wall time s", "train ex/s", "peak MB", "device", "profile"]
    for r in records:
        main = r["main_metric"]
        best, last = best_and_last(r)
        rows.append({
            "run": run_name(r), "task": r["task"], "method": method_label(r), "model": r["model"],
            "seed": record_seed(r), "metric": f"{main['split']} {main['name']}",
            "best": round(best, 4), "last": round(last, 4), "value": round(last, 4),
            "all metrics": "; ".join(
                f"{split}: " + " ".join(f"{k}={v:.3f}" for k, v in values.items() if k != "loss")
                for split, values in r["metrics"].items()),
            "trainable": r["params"]["trainable"],
            "trainable %": round(r["params"]["trainable_percent"], 3),
            "train examples": r["data"]["train_examples"], "epochs": r.get("epochs_run"),
            "wall time s": round(r["wall_time_s"], 1),
            "train ex/s": r.get("train_examples_per_s"),
            "peak MB": round(r["peak_memory_mb"]) if r.get("peak_memory_mb") else None,
            "device": r.get("device"), "profile": r.get("profile"),
        })
    return pd.DataFrame(rows, columns=columns)


FONT = 9  # smallest font in the comparison figures: legible at page width


def plot_comparison(records: Sequence[dict[str, Any]], title: str | None = None) -> plt.Figure:
    """Metric against trainable parameters (log scale), one panel per task, a point per method.

    Filled marker: the best evaluation; hollow: the last. A method run with several seeds is
    drawn at their mean, with error bars of one sd of best; a method has one colour throughout."""
    table = records_table(records)
    tasks = ordered_tasks(table["task"])
    colors = {m: f"C{i % 10}" for i, m in enumerate(dict.fromkeys(
        method_label(r) for r in sorted(records, key=method_order)))}
    width = min(10.0, 3.4 * max(len(tasks), 1))
    fig, axes = plt.subplots(1, max(len(tasks), 1), figsize=(width, 3.7), squeeze=False)
    markers: list[list[tuple[float, float]]] = []  # each panel's points, best and last
    for ax, task in zip(axes[0], tasks):
        rows = table[table["task"] == task]
        points = (rows.groupby("method", sort=False)
                  .agg(trainable=("trainable", "mean"), best=("best", "mean"),
                       sd=("best", "std"), last=("last", "mean"), n=("best", "size"))
                  .sort_values("trainable"))
        for method, p in points.iterrows():
            color = colors.get(method, "C0")
            sd = p["sd"] if p["n"] > 1 else None
            ax.errorbar(p["trainable"], p["best"], yerr=sd, fmt="o", color=color, ms=6,
                        capsize=3, zorder=3)
            ax.plot(p["trainable"], p["last"], "o", mfc="none", mec=color, ms=8, zorder=2)
            label = method + (f" (n={int(p['n'])})" if p["n"] > 1 else "")
            ax.annotate(label, (p["trainable"], p["best"]), fontsize=FONT, xytext=(5, 6),
                        textcoords="offset points")
        ax.set_xscale("log")
        ax.margins(x=0.3, y=0.15)
        markers.append([(x, y) for x, *ys in points[["trainable", "best", "last"]]
                        .itertuples(index=False) for y in ys])
        metric = rows["metric"].iloc[0].split(" ", 1)
        _label_axes(ax, "trainable parameters (log)",
                    f"{metric[0]} {METRIC_NAMES.get(metric[-1], metric[-1])}", task_name(task))
    axes[0][0].plot([], [], "o", color="grey", label="best")
    axes[0][0].plot([], [], "o", mfc="none", mec="grey", label="last")
    axes[0][0].legend(fontsize=FONT, loc="best")
    _finish(fig, title or _provenance_title(records), FONT)
    fig.canvas.draw()  # final limits and layout: the labels are spread in display space
    for ax, points in zip(axes[0], markers):
        _spread_labels(fig, ax, ax.texts, points)  # the point labels: the panel's only texts
    return fig


def _label_axes(ax: plt.Axes, xlabel: str, ylabel: str, title: str) -> None:
    """Labels and ticks at the comparison figures' sizes, and a light grid."""
    ax.set_xlabel(xlabel, fontsize=FONT + 1)
    ax.set_ylabel(ylabel, fontsize=FONT + 1)
    ax.set_title(title, fontsize=FONT + 1)
    ax.tick_params(labelsize=FONT)
    ax.grid(alpha=0.3)


def _spread_labels(fig: plt.Figure, ax: plt.Axes, labels: Sequence[Any],
                   points: Sequence[tuple[float, float]]) -> None:
    """Move each point label (left to right) to the first offset (in points) where it overlaps
    no marker and no label placed before it; failing that, to the offset with fewest overlaps."""
    from matplotlib.transforms import Bbox

    renderer = fig.canvas.get_renderer()
    placed = [Bbox.from_bounds(x - 4, y - 4, 8, 8) for x, y in ax.transData.transform(points)]
    for label in labels:
        choices = []
        for dx, dy in [(5, 6), (5, -13), (-5, 6), (-5, -13), (5, 18), (5, -25), (-5, 18),
                       (-5, -25)]:
            label.xyann = (dx, dy)
            label.set_ha("left" if dx >= 0 else "right")
            box = label.get_window_extent(renderer).expanded(1.02, 1.1)
            choices.append((sum(box.overlaps(other) for other in placed), (dx, dy), box))
            if choices[-1][0] == 0:
                break
        _, (dx, dy), box = min(choices, key=lambda c: c[0])
        label.xyann = (dx, dy)
        label.set_ha("left" if dx >= 0 else "right")
        placed.append(box)


def method_order(record: dict[str, Any]) -> tuple[int, str]:
    """Sort key: the library's method order (full, freeze, bitfit, lora, prefix, ...), then
    the label."""
    names = list(METHODS)
    method = record.get("method", "?")
    return (names.index(method) if method in names else len(names), method_label(record))


def plot_rank_sweep(records: Sequence[dict[str, Any]], title: str | None = None) -> plt.Figure:
    """LoRA: the main metric against the rank r (log scale), one line per task; the line joins
    the best evaluations, hollow markers are the last."""
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    by_task: dict[str, list[tuple[int, float, float]]] = {}
    for r in records:
        if r.get("method") == "lora":
            by_task.setdefault(r["task"], []).append((r["method_config"]["r"], *best_and_last(r)))
    for i, (task, points) in enumerate(by_task.items()):
        points.sort()
        ranks, best, last = zip(*points)
        name = next(r["main_metric"]["name"] for r in records if r["task"] == task)
        column = metric_column(task, name)
        ax.plot(ranks, best, marker="o", color=f"C{i}", label=f"{column}, best")
        ax.plot(ranks, last, "o", mfc="none", mec=f"C{i}", ms=8, label=f"{column}, last")
    ax.set_xscale("log", base=2)
    _label_axes(ax, "LoRA rank r", "dev metric", "LoRA rank sweep")
    ax.legend(fontsize=FONT)
    return _finish(fig, title or _provenance_title(records), FONT)


def plot_costs(records: Sequence[dict[str, Any]], title: str | None = None) -> plt.Figure:
    """What each method costs: throughput, wall time and (on a GPU only) peak memory, bars per
    method and task. On a CPU the peak is the notebook process's resident memory, which only
    grows from run to run, so it says nothing about a method and is left out."""
    table = records_table(records)
    methods = list(dict.fromkeys(table["method"]))
    tasks = list(dict.fromkeys(table["task"]))
    columns = {"train ex/s": "training examples / s", "peak MB": "peak memory (MB)",
               "wall time s": "wall time (s)"}
    if any(not str(r.get("device", "")).startswith("cuda") for r in records):
        columns.pop("peak MB")
    fig, axes = plt.subplots(1, len(columns), figsize=(4.2 * len(columns), 3.6))
    width = 0.8 / max(len(tasks), 1)
    for ax, (column, label) in zip(axes, columns.items()):
        for i, task in enumerate(tasks):
            rows = table[table["task"] == task].set_index("method").reindex(methods)
            ax.bar([m + i * width for m in range(len(methods))], rows[column].astype(float),
                   width=width, label=task)
        ax.set_xticks([m + width * (len(tasks) - 1) / 2 for m in range(len(methods))])
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
        ax.set(ylabel=label, title=label)
    axes[0].legend(fontsize=8)
    return _finish(fig, title or _provenance_title(records))


def plot_trial_history(result: SearchResult) -> plt.Figure:
    """Objective by trial with the best so far (left); the metric after each epoch (right)."""
    fig, (ax_trials, ax_epochs) = plt.subplots(1, 2, figsize=(10, 3.6))
    done = result.completed
    ax_trials.scatter([t.number for t in done], [t.objective for t in done], s=30,
                      label="trial", zorder=3)
    pick = max if result.direction == "maximize" else min
    running = [pick(t.objective for t in done[:i + 1]) for i in range(len(done))]
    ax_trials.step([t.number for t in done], running, where="post", color="C1", label="best so far")
    others = [t for t in result.trials if t not in done and t.epoch_values]
    if others:
        ax_trials.scatter([t.number for t in others], [t.epoch_values[-1] for t in others],
                          marker="x", color="grey", label="pruned/failed (last value)")
    best = result.best.number if done else None
    for t in result.trials:
        if t.epoch_values:
            epochs = range(1, len(t.epoch_values) + 1)
            ax_epochs.plot(epochs, t.epoch_values, marker="o", ms=3,
                           lw=2.5 if t.number == best else 1,
                           alpha=1.0 if t.number == best else 0.5,
                           label=f"trial {t.number}" + (" (best)" if t.number == best else ""))
    name = f"{result.split} {result.metric}"
    ax_trials.set(xlabel="trial", ylabel=name, title="objective by trial")
    ax_trials.legend(fontsize=8)
    ax_epochs.set(xlabel="epoch", ylabel=name, title="metric after each epoch, per trial")
    for ax in (ax_trials, ax_epochs):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    if len(result.trials) <= 12:
        ax_epochs.legend(fontsize=7)
    return _finish(fig, result.label)


def plot_params(result: SearchResult) -> plt.Figure:
    """Objective against each searched parameter, one panel each; the best trial is a star."""
    names = list(result.space)
    fig, axes = plt.subplots(1, len(names), figsize=(3.1 * len(names), 3.2), squeeze=False)
    done = result.completed
    best = result.best if done else None
    for ax, name in zip(axes[0], names):
        ax.scatter([t.params[name] for t in done], [t.objective for t in done], s=25)
        if best is not None:
            ax.scatter([best.params[name]], [best.objective], marker="*", s=160, color="C3",
                       zorder=3, label=f"best (trial {best.number})")
        if name == "learning_rate":
            ax.set_xscale("log")
            ax.tick_params(axis="x", which="both", labelsize=7, labelrotation=45)
        elif name == "per_device_train_batch_size":
            ax.set_xticks(sorted(result.space[name]))
        elif name in ("num_train_epochs", "seed"):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel=name, title=name)
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel(f"{result.split} {result.metric}")
    if best is not None:
        axes[0][0].legend(fontsize=7)
    return _finish(fig, result.label)
