"""The nine GLUE tasks at a glance: inputs, labels, metric and why, official sizes. Everything
is read from the task table (`d2l_utils.tasks`) or cited; nothing is measured here. Published
scores live in `d2l_utils.pages.references`."""

from __future__ import annotations

import pandas as pd

from ..tasks import GLUE_TASKS, TASKS

# Why each task is scored the way it is (the official GLUE metric), in one line.
METRIC_REASONS: dict[str, str] = {
    "cola": "about 70% of sentences are acceptable, so accuracy rewards always saying "
            "'acceptable'; Matthews correlation is 0 for any constant guess",
    "sst2": "two roughly balanced classes: accuracy is fair",
    "mrpc": "about 68% of pairs are paraphrases: accuracy and F1 of the paraphrase class are "
            "reported together, since each alone can flatter a lopsided model",
    "stsb": "the label is a similarity score from 0 to 5 (regression): Pearson correlation of "
            "predicted and gold scores, Spearman for their ranks",
    "qqp": "about 63% of pairs are not duplicates: never saying 'duplicate' scores 63% accuracy "
           "but F1 0, so both are reported",
    "mnli": "three balanced classes: accuracy, on the matched (same genres as train) and "
            "mismatched (new genres) dev sets",
    "qnli": "balanced binary: accuracy",
    "rte": "roughly balanced binary: accuracy",
    "wnli": "binary accuracy; train and dev share sentences with opposite labels, so a model "
            "that fits train tends to score below the majority class (56.3% of dev)",
}


def task_table(tasks: tuple[str, ...] = GLUE_TASKS) -> pd.DataFrame:
    """One row per task: inputs, labels, metrics (the first one selects models), eval splits,
    official sizes (cited by `TaskSpec.sizes_source`; `size_sources` lists them)."""
    rows = []
    for name in tasks:
        task = TASKS[name]
        sizes = task.official_sizes
        rows.append({
            "task": name, "what": task.description, "inputs": " + ".join(task.text_keys),
            "num_labels": task.num_labels, "labels": "score 0-5 (regression)"
            if task.is_regression else ", ".join(task.label_names),
            "metrics": ", ".join(task.metrics), "eval splits": ", ".join(task.eval_splits),
            "train": f"{sizes['train']:,}" if "train" in sizes else "",
            "dev": " / ".join(f"{sizes[s]:,}" for s in task.eval_splits if s in sizes),
        })
    return pd.DataFrame(rows).set_index("task")


def size_sources(tasks: tuple[str, ...] = GLUE_TASKS) -> dict[str, list[str]]:
    """Where the official sizes in `task_table` come from: source -> the tasks it covers."""
    sources: dict[str, list[str]] = {}
    for name in tasks:
        sources.setdefault(TASKS[name].sizes_source, []).append(name)
    return sources


def metric_table(tasks: tuple[str, ...] = GLUE_TASKS) -> pd.DataFrame:
    """One row per task: its metrics and why they fit the task's labels."""
    return pd.DataFrame([{"task": name, "metrics": ", ".join(TASKS[name].metrics),
                          "why": METRIC_REASONS[name]} for name in tasks]).set_index("task")
