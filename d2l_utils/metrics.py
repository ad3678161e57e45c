"""GLUE metrics computed with scikit-learn and scipy (`evaluate.load` would need the network)."""

from __future__ import annotations

import warnings
from typing import Callable

import numpy as np
from scipy.stats import ConstantInputWarning, pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from .tasks import TaskSpec


class MetricError(ValueError):
    """Metric inputs that would give a meaningless number (NaN or infinite scores)."""


def _correlation(fn: Callable) -> Callable[[np.ndarray, np.ndarray], float]:
    def score(predictions: np.ndarray, labels: np.ndarray) -> float:
        # A constant prediction has no correlation; report 0 rather than NaN so that runs compare.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConstantInputWarning)
            value = float(fn(predictions, labels)[0])
        return 0.0 if np.isnan(value) else value

    return score


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


def compute_metrics(task: TaskSpec, predictions: np.ndarray,
                    labels: np.ndarray) -> dict[str, float]:
    """Every official metric of `task`; `predictions` are class ids or regression scores."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{task.name}: {predictions.shape[0]} predictions for "
                         f"{labels.shape[0]} labels")
    if labels.size == 0:
        raise ValueError(f"{task.name}: cannot compute metrics on an empty evaluation set")
    for name, values in (("labels", labels), ("predictions", predictions)):
        bad = ~np.isfinite(values.astype(float, copy=False))
        if bad.any():  # a NaN would make the correlation NaN, reported as 0.0: never
            first = int(np.flatnonzero(bad)[0])
            cause = (" (the model diverged: try a smaller --lr)" if name == "predictions"
                     else " (check the evaluation data)")
            raise MetricError(f"{task.name}: {int(bad.sum())} of {values.size} {name} are not "
                              f"finite numbers (the first, #{first}, is {values[first]})"
                              f"{cause}")
    return {name: METRICS[name](predictions, labels) for name in task.metrics}
