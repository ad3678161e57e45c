"""The nine GLUE tasks at a glance: inputs, labels, metric and why, official sizes.

Everything is read from the task table (`d2l_utils.tasks`) or cited; nothing is measured here.
Published scores live in `d2l_utils.references`.
"""

from __future__ import annotations

import pandas as pd

from ..tasks import TASKS, TaskSpec

GLUE_TASKS: tuple[str, ...] = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte",
                               "wnli")

# Official split sizes. CoLA, SST-2, STS-B and MNLI: SPEC section 4; the others: the `nyu-mll/glue`
# dataset card on the Hugging Face hub (the same files the hub loader reads).
OFFICIAL_SIZES: dict[str, dict[str, int]] = {
    "cola": {"train": 8_551, "validation": 1_043},
    "sst2": {"train": 67_349, "validation": 872},
    "mrpc": {"train": 3_668, "validation": 408},
    "stsb": {"train": 5_749, "validation": 1_500},
    "qqp": {"train": 363_846, "validation": 40_430},
    "mnli": {"train": 392_702, "validation_matched": 9_815, "validation_mismatched": 9_832},
    "qnli": {"train": 104_743, "validation": 5_463},
    "rte": {"train": 2_490, "validation": 277},
    "wnli": {"train": 635, "validation": 71},
}
SIZE_SOURCE = {task: "SPEC §4" if task in ("cola", "sst2", "stsb", "mnli")
               else "nyu-mll/glue dataset card" for task in OFFICIAL_SIZES}

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


def _inputs(task: TaskSpec) -> str:
    return " + ".join(task.text_keys)


def _labels(task: TaskSpec) -> str:
    return "score 0-5 (regression)" if task.is_regression else ", ".join(task.label_names)


def task_table(tasks: tuple[str, ...] = GLUE_TASKS) -> pd.DataFrame:
    """One row per task: inputs, labels, metrics (the first one selects models), eval splits,
    official sizes."""
    rows = []
    for name in tasks:
        task = TASKS[name]
        sizes = OFFICIAL_SIZES.get(name, {})
        rows.append({
            "task": name, "what": task.description, "inputs": _inputs(task),
            "num_labels": task.num_labels, "labels": _labels(task),
            "metrics": ", ".join(task.metrics), "main metric": task.main_metric,
            "eval splits": ", ".join(task.eval_splits),
            "train": sizes.get("train"),
            "dev": " / ".join(f"{sizes[s]:,}" for s in task.eval_splits if s in sizes) or None,
            "sizes from": SIZE_SOURCE.get(name),
        })
    table = pd.DataFrame(rows).set_index("task")
    table["train"] = table["train"].astype("Int64")  # whole numbers, <NA> where unknown
    return table


def metric_table(tasks: tuple[str, ...] = GLUE_TASKS) -> pd.DataFrame:
    """One row per task: its metrics and why they fit the task's labels."""
    return pd.DataFrame([{"task": name, "metrics": ", ".join(TASKS[name].metrics),
                          "why": METRIC_REASONS[name]} for name in tasks]).set_index("task")


def search_subset_size(task: str, fraction: float) -> int:
    """`fraction` of the task's official train size (at least 1): the search subset's size."""
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if task not in OFFICIAL_SIZES:
        raise ValueError(f"no official size recorded for {task!r}; pass max_train_samples")
    return max(1, round(fraction * OFFICIAL_SIZES[task]["train"]))
