"""The tests behind "can these two runs be told apart": vectorised metrics, the paired
bootstrap over dev examples and Welch's t-test over seeds."""

import numpy as np
import pytest
from scipy.stats import ttest_ind

from d2l_utils.metrics import METRICS
from d2l_utils.stats import metric_rows, paired_bootstrap, welch_p


@pytest.mark.parametrize("name,classes", [("accuracy", 3), ("matthews_correlation", 2),
                                          ("matthews_correlation", 3), ("pearson", None)])
def test_vectorised_metrics_equal_the_library_metrics(name, classes):
    rng = np.random.default_rng(0)
    shape = (5, 200)
    if classes is None:
        labels, pred = rng.normal(size=shape), rng.normal(size=shape)
        pred = pred + labels
    else:
        labels = rng.integers(0, classes, size=shape)
        pred = np.where(rng.random(shape) < 0.6, labels, rng.integers(0, classes, size=shape))
    rows = metric_rows(name, labels)(pred, labels)
    expected = [METRICS[name](p, y) for p, y in zip(pred, labels)]
    np.testing.assert_allclose(rows, expected, rtol=1e-9, atol=1e-12)


def test_constant_predictions_have_mcc_zero_as_sklearn():
    labels = np.array([[0, 1, 1, 0, 1]])
    assert metric_rows("matthews_correlation", labels)(np.ones_like(labels), labels)[0] == 0.0


def sst2_like(accuracy: float, seed: int, labels: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(len(labels)) < accuracy, labels, 1 - labels)


def test_a_large_gap_is_told_apart_and_a_tiny_one_is_not():
    labels = np.random.default_rng(1).integers(0, 2, size=872)
    good, poor = sst2_like(0.90, 2, labels), sst2_like(0.70, 3, labels)
    far = paired_bootstrap("accuracy", [(good, poor, labels)])
    assert far.gap == pytest.approx(np.mean(good == labels) - np.mean(poor == labels))
    assert far.p_value < 0.01 and 0 < far.low < far.gap < far.high
    near = good.copy()
    near[np.flatnonzero(near == labels)[:3]] ^= 1  # 3 of 872 answers turned wrong
    close = paired_bootstrap("accuracy", [(good, near, labels)])
    assert close.gap == pytest.approx(3 / 872)
    assert close.p_value > 0.05 and close.low <= 0 < close.high


def test_pairing_is_what_makes_a_consistent_small_gap_visible():
    """Run B is run A with 25 more mistakes: paired, 2.9 points is clear; the unpaired
    binomial rule (2 SE of the difference, about 4 points at 85% on 872) could not see it."""
    labels = np.random.default_rng(4).integers(0, 2, size=872)
    a = sst2_like(0.88, 5, labels)
    b = a.copy()
    b[np.flatnonzero(a == labels)[:25]] ^= 1
    gap = paired_bootstrap("accuracy", [(a, b, labels)])
    unpaired_2se = 2 * np.sqrt(2 * 0.86 * 0.14 / 872)
    assert gap.gap < unpaired_2se and gap.p_value < 0.01


def test_identical_runs_have_no_gap():
    labels = np.random.default_rng(6).normal(size=300)
    pred = labels + np.random.default_rng(7).normal(size=300)
    same = paired_bootstrap("pearson", [(pred, pred, labels), (pred, pred, labels)])
    assert same.gap == 0 and same.p_value == 1.0 and same.low == same.high == 0


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="at least one"):
        paired_bootstrap("accuracy", [])
    with pytest.raises(ValueError, match="different lengths"):
        paired_bootstrap("accuracy", [([0, 1], [0, 1, 1], [0, 1])])


def test_welch_matches_scipy_and_needs_two_seeds_each():
    a, b = [0.858, 0.861, 0.855], [0.846, 0.838, 0.853]
    assert welch_p(a, b) == pytest.approx(ttest_ind(a, b, equal_var=False).pvalue)
    assert welch_p(a, [0.84]) is None
