"""Can two runs be told apart? Two sources of noise, two tests.

* The **dev set** is a sample: a paired bootstrap over its examples (Efron & Tibshirani, 1993;
  Koehn, 2004 and Berg-Kirkpatrick et al., 2012 for NLP) resamples the examples, the same ones for
  both runs, and recomputes the metric gap. Pairing matters: two runs on one dev set get many of
  the same examples right, so their errors are correlated and an unpaired rule overstates the noise.
* The **training run** is a sample too: with several seeds per method, Welch's t-test compares
  the seeds' values.

The metrics are vectorised over the resamples (accuracy, binary MCC, Pearson); any other metric
of `d2l_utils.metrics` is computed resample by resample.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
from scipy.stats import ttest_ind

from .metrics import METRICS


def _binary_mcc(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Matthews correlation of 0/1 predictions per row; 0 where a margin is empty (as sklearn)."""
    pred, labels = pred.astype(float), labels.astype(float)
    tp = (pred * labels).sum(axis=-1)
    tn = ((1 - pred) * (1 - labels)).sum(axis=-1)
    fp = (pred * (1 - labels)).sum(axis=-1)
    fn = ((1 - pred) * labels).sum(axis=-1)
    denominator = np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (tp * tn - fp * fn) / denominator, 0.0)


def _pearson(pred: np.ndarray, labels: np.ndarray) -> np.ndarray:
    x = pred - pred.mean(axis=-1, keepdims=True)
    y = labels - labels.mean(axis=-1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (x * y).sum(axis=-1) / np.sqrt((x * x).sum(axis=-1) * (y * y).sum(axis=-1))


def metric_rows(name: str, labels: np.ndarray) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """`fn(predictions, labels)` computing metric `name` for each row of 2-D arrays."""
    if name == "accuracy":
        return lambda p, y: (p == y).mean(axis=-1)
    if name == "pearson":
        return _pearson
    if name == "matthews_correlation" and set(np.unique(labels)) <= {0, 1}:
        return _binary_mcc
    one = METRICS[name]
    return lambda p, y: np.array([one(pi, yi) for pi, yi in zip(np.atleast_2d(p),
                                                                 np.atleast_2d(y))])


@dataclass(frozen=True)
class PairedGap:
    """Metric of A minus metric of B on the same examples: the gap, a 95% bootstrap interval
    and the two-sided p-value of "no difference"."""

    gap: float
    low: float
    high: float
    p_value: float
    resamples: int


def paired_bootstrap(metric: str, pairs: Sequence[tuple[Sequence, Sequence, Sequence]],
                     resamples: int = 2000, seed: int = 0) -> PairedGap:
    """Paired bootstrap of metric(A) - metric(B) over the examples.

    `pairs` holds one `(predictions_a, predictions_b, labels)` per shared seed (all on the same
    examples in the same order); the gap is their mean over the pairs. Each resample draws the
    examples with replacement, the same draw for every pair. The p-value counts the resampled
    gaps at least as far from the observed gap as the observed gap is from 0 (the bootstrap
    distribution shifted to the null, Berg-Kirkpatrick et al., 2012)."""
    if not pairs:
        raise ValueError("paired_bootstrap needs at least one (predictions_a, predictions_b, "
                         "labels) triple")
    arrays = [tuple(np.asarray(x) for x in triple) for triple in pairs]
    n = len(arrays[0][2])
    for a, b, y in arrays:
        if not len(a) == len(b) == len(y) == n:
            raise ValueError(f"paired_bootstrap: predictions and labels of different lengths "
                             f"({len(a)}, {len(b)}, {len(y)}; expected {n})")
    rng = np.random.default_rng(seed)
    index = rng.integers(0, n, size=(resamples, n))
    observed, resampled = 0.0, np.zeros(resamples)
    for a, b, y in arrays:
        fn = metric_rows(metric, y)
        observed += float(fn(a[None], y[None])[0] - fn(b[None], y[None])[0])
        resampled += fn(a[index], y[index]) - fn(b[index], y[index])
    observed, resampled = observed / len(arrays), resampled / len(arrays)
    resampled = resampled[np.isfinite(resampled)]  # a constant resample has no correlation
    low, high = np.percentile(resampled, [2.5, 97.5])
    extreme = np.count_nonzero(np.abs(resampled - observed) >= abs(observed))
    return PairedGap(gap=observed, low=float(low), high=float(high),
                     p_value=(1 + extreme) / (1 + len(resampled)), resamples=len(resampled))


def welch_p(a: Sequence[float], b: Sequence[float]) -> float | None:
    """Two-sided p-value of Welch's t-test on two groups of seeds; None with fewer than 2 each."""
    if len(a) < 2 or len(b) < 2:
        return None
    return float(ttest_ind(a, b, equal_var=False).pvalue)
