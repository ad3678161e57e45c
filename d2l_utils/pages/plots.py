"""Figures and tables drawn from run records (training curves, parameter tables, comparisons)
and from hyperparameter searches.

Every figure takes records (the dicts `train` returns and writes as `record.json`), so a chapter's
own run and the committed real runs are drawn the same way. Titles carry the provenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..hpo import SearchResult
from .notebook import result_label


def method_label(record: dict[str, Any]) -> str:
    """method (+ the option that distinguishes it, such as the LoRA rank)."""
    method = record.get("method", "?")
    config = record.get("method_config", {})
    if method == "lora" and "r" in config:
        return f"lora r={config['r']}"
    return method


def metric_curve(record: dict[str, Any]) -> tuple[list[int], list[float]]:
    """(steps, values) of the main dev metric: mid-epoch evaluations and epoch ends, by step."""
    main = record["main_metric"]
    points = {e["step"]: e[main["split"]][main["name"]] for e in record.get("eval_log", [])}
    points.update({h["step"]: h[main["split"]][main["name"]] for h in record["history"]})
    steps = sorted(points)
    return steps, [points[s] for s in steps]


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
        xs, ys = metric_curve(record)
        ax_metric.plot(xs, ys, marker="o", markersize=3, label=label)
    ax_loss.set(xlabel="optimizer step", ylabel="training loss", title="training loss")
    if records:
        main = records[0]["main_metric"]
        ax_metric.set(xlabel="optimizer step", ylabel=main["name"],
                      title=f"{main['split']} {main['name']}")
    ax_metric.legend(fontsize=8)
    fig.suptitle(title or _provenance_title(records), fontsize=9)
    fig.tight_layout()
    return fig


def _provenance_title(records: Sequence[dict[str, Any]]) -> str:
    labels = sorted({result_label(r) for r in records})
    return labels[0] if len(labels) == 1 else f"{len(records)} runs: " + "; ".join(labels[:2])


def params_table(counts: dict[str, dict[str, Any]],
                 expected: dict[str, int | tuple[int, str]] | None = None) -> pd.DataFrame:
    """One row per method: trainable, method and head parameters, share of the total.

    `counts` maps a row name to `count_parameters(model)`. `expected` (optional) adds the number a
    source reports and whether the library reproduces it: an int is compared with `trainable`,
    `(value, key)` with another count, e.g. `(294_912, "method_params")` for LoRA matrices only.
    """
    rows = []
    for name, c in counts.items():
        row = {"method": name, "trainable": c["trainable"], "method params": c["method_params"],
               "head params": c["head_params"], "total": c["total"],
               "trainable %": round(c["trainable_percent"], 3)}
        if expected is not None and name in expected:
            value, key = expected[name] if isinstance(expected[name], tuple) else (
                expected[name], "trainable")
            row["seed reports"] = f"{value:,} ({key.replace('_', ' ')})"
            row["match"] = "yes" if c[key] == value else "NO"
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")


def records_table(records: Sequence[dict[str, Any]]) -> pd.DataFrame:
    """The comparison table: metric, trainable parameters, time, throughput and memory a run."""
    rows = []
    columns = ["task", "method", "model", "metric", "value", "all metrics", "trainable",
               "trainable %", "train examples", "epochs", "wall time s", "train ex/s", "peak MB",
               "device", "profile"]
    for r in records:
        main = r["main_metric"]
        rows.append({
            "task": r["task"], "method": method_label(r), "model": r["model"],
            "metric": f"{main['split']} {main['name']}", "value": round(main["value"], 4),
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


def plot_comparison(records: Sequence[dict[str, Any]], title: str | None = None) -> plt.Figure:
    """Metric against trainable parameters (log scale), one panel per task, a point per method."""
    table = records_table(records)
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        rows = table[table["task"] == task]
        ax.scatter(rows["trainable"], rows["value"], s=40)
        for _, row in rows.iterrows():
            ax.annotate(row["method"], (row["trainable"], row["value"]), fontsize=8,
                        xytext=(4, 3), textcoords="offset points")
        ax.set_xscale("log")
        ax.set(xlabel="trainable parameters (log)", ylabel=rows["metric"].iloc[0], title=task)
        ax.grid(alpha=0.3)
    fig.suptitle(title or _provenance_title(records), fontsize=9)
    fig.tight_layout()
    return fig


def plot_rank_sweep(records: Sequence[dict[str, Any]], title: str | None = None) -> plt.Figure:
    """LoRA: the main metric against the rank r (log scale), one line per task."""
    fig, ax = plt.subplots(figsize=(5, 3.4))
    by_task: dict[str, list[tuple[int, float]]] = {}
    for r in records:
        if r.get("method") == "lora":
            by_task.setdefault(r["task"], []).append((r["method_config"]["r"],
                                                      r["main_metric"]["value"]))
    for task, points in by_task.items():
        points.sort()
        name = next(r["main_metric"]["name"] for r in records if r["task"] == task)
        ax.plot(*zip(*points), marker="o", label=f"{task} ({name})")
    ax.set_xscale("log", base=2)
    ax.set(xlabel="LoRA rank r", ylabel="dev metric", title="LoRA rank sweep")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(title or _provenance_title(records), fontsize=9)
    fig.tight_layout()
    return fig


COST_COLUMNS = {"train ex/s": "training examples / s", "peak MB": "peak memory (MB)",
                "wall time s": "wall time (s)"}


def plot_costs(records: Sequence[dict[str, Any]], title: str | None = None) -> plt.Figure:
    """What each method costs: throughput, peak memory and wall time, bars per method and task."""
    table = records_table(records)
    methods = list(dict.fromkeys(table["method"]))
    tasks = list(dict.fromkeys(table["task"]))
    fig, axes = plt.subplots(1, len(COST_COLUMNS), figsize=(4.2 * len(COST_COLUMNS), 3.6))
    width = 0.8 / max(len(tasks), 1)
    for ax, (column, label) in zip(axes, COST_COLUMNS.items()):
        for i, task in enumerate(tasks):
            rows = table[table["task"] == task].set_index("method").reindex(methods)
            ax.bar([m + i * width for m in range(len(methods))], rows[column].astype(float),
                   width=width, label=task)
        ax.set_xticks([m + width * (len(tasks) - 1) / 2 for m in range(len(methods))])
        ax.set_xticklabels(methods, rotation=45, ha="right", fontsize=8)
        ax.set(ylabel=label, title=label)
    axes[0].legend(fontsize=8)
    fig.suptitle(title or _provenance_title(records), fontsize=9)
    fig.tight_layout()
    return fig


# ---------------------------------------------------------------------------------------------
# Hyperparameter search (chapter 2)


def plot_trial_history(result: SearchResult) -> plt.Figure:
    """Objective by trial with the best so far (left); the metric after each epoch (right)."""
    fig, (ax_trials, ax_epochs) = plt.subplots(1, 2, figsize=(10, 3.6))
    done = result.completed
    ax_trials.scatter([t.number for t in done], [t.objective for t in done], s=30,
                      label="trial", zorder=3)
    pick = max if result.direction == "maximize" else min
    running = [pick(t.objective for t in done[:i + 1]) for i in range(len(done))]
    ax_trials.step([t.number for t in done], running, where="post", color="C1",
                   label="best so far")
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
    fig.suptitle(result.label, fontsize=9)
    fig.tight_layout()
    return fig


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
    fig.suptitle(result.label, fontsize=9)
    fig.tight_layout()
    return fig
