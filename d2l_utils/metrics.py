"""GLUE metrics computed with scikit-learn and scipy (`evaluate.load` would need the network).

A correlation (STS-B's Pearson and Spearman) is undefined when the labels or the predictions are
constant: it is reported as None, with the reason under the key `undefined`, never as 0.0. Two
conventions of scikit-learn and GLUE are kept, since their value is a fact, not a missing number:
the Matthews correlation of constant predictions is 0.0 (every CoLA row of 0.000 in chapter 6 is a
model that predicts one class for every sentence), and F1 with no positive prediction is 0.0.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import numpy as np
from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from .tasks import TaskSpec


class MetricError(ValueError):
    """Metric inputs that would give a meaningless number (NaN or infinite scores)."""


def _correlation(fn: Callable) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(predictions: np.ndarray, labels: np.ndarray) -> float:
        with warnings.catch_warnings():  # constant inputs never get here (`undefined_reason`)
            warnings.simplefilter("ignore", ConstantInputWarning)
            return float(fn(predictions, labels)[0])

    return score


CORRELATIONS = ("pearson", "spearmanr")
# The fewest evaluation examples each metric needs (a correlation needs two pairs); others 1.
MIN_EXAMPLES = {name: 2 for name in CORRELATIONS}

METRICS: dict[str, Callable[[np.ndarray, np.ndarray], float]] = {
    "accuracy": lambda p, y: float(accuracy_score(y, p)),
    "f1": lambda p, y: float(f1_score(y, p, zero_division=0.0)),
    "matthews_correlation": lambda p, y: float(matthews_corrcoef(y, p)),
    "pearson": _correlation(pearsonr),
    "spearmanr": _correlation(spearmanr),
}


def predictions_from_logits(task: TaskSpec, logits: np.ndarray) -> np.ndarray:
    """Class ids (argmax) for classification, the single output column for regression."""
    logits = np.asarray(logits)
    return logits.reshape(-1) if task.is_regression else logits.argmax(axis=-1)


def undefined_reason(name: str, predictions: np.ndarray, labels: np.ndarray) -> str | None:
    """Why metric `name` has no value on these inputs (a correlation of constant values), or
    None when it has one."""
    if name not in CORRELATIONS:
        return None
    if labels.size < MIN_EXAMPLES[name]:
        return f"{labels.size} pair(s); a correlation needs at least {MIN_EXAMPLES[name]}"
    for what, values in (("labels", labels), ("predictions", predictions)):
        if np.all(values == values.flat[0]):
            return f"the {what} are constant ({values.flat[0]:g}): a correlation needs variation"
    return None


def format_metrics(metrics: dict[str, Any]) -> str:
    """`name=value` for each metric, 4 decimals; an undefined one as `name=undefined (reason)`."""
    reasons = metrics.get("undefined", {})
    return " ".join(f"{k}={v:.4f}" if v is not None else f"{k}=undefined ({reasons.get(k, '?')})"
                    for k, v in metrics.items() if k != "undefined")


def compute_metrics(task: TaskSpec, predictions: np.ndarray,
                    labels: np.ndarray) -> dict[str, Any]:
    """Every official metric of `task`; `predictions` are class ids or regression scores. An
    undefined metric is None, its reason in `undefined` ({metric: reason})."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{task.name}: {predictions.shape[0]} predictions for "
                         f"{labels.shape[0]} labels")
    if labels.size == 0:
        raise ValueError(f"{task.name}: cannot compute metrics on an empty evaluation set")
    for name, values in (("labels", labels), ("predictions", predictions)):
        bad = ~np.isfinite(values.astype(float, copy=False))
        if bad.any():  # a NaN would make the correlation NaN: an error, never a number
            first = int(np.flatnonzero(bad)[0])
            cause = (" (the model diverged: try a smaller --lr)" if name == "predictions"
                     else " (check the evaluation data)")
            raise MetricError(f"{task.name}: {int(bad.sum())} of {values.size} {name} are not "
                              f"finite numbers (the first, #{first}, is {values[first]})"
                              f"{cause}")
    reasons = {name: reason for name in task.metrics
               if (reason := undefined_reason(name, predictions, labels)) is not None}
    metrics: dict[str, Any] = {name: None if name in reasons else METRICS[name](predictions, labels)
                               for name in task.metrics}
    if reasons:
        metrics["undefined"] = reasons
    return metrics
