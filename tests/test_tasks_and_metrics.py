import numpy as np
import pytest

from d2l_utils.metrics import compute_metrics, predictions_from_logits
from d2l_utils.tasks import TASKS, TaskError, get_task

GLUE = ["cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli"]


def test_registry_has_all_glue_tasks_and_snli():
    assert sorted(TASKS) == sorted(GLUE + ["snli"])


@pytest.mark.parametrize("name,num_labels,metrics,pair", [
    ("cola", 2, ("matthews_correlation",), False),
    ("sst2", 2, ("accuracy",), False),
    ("mrpc", 2, ("f1", "accuracy"), True),
    ("stsb", 1, ("pearson", "spearmanr"), True),
    ("qqp", 2, ("f1", "accuracy"), True),
    ("mnli", 3, ("accuracy",), True),
    ("qnli", 2, ("accuracy",), True),
    ("rte", 2, ("accuracy",), True),
    ("wnli", 2, ("accuracy",), True),
    ("snli", 3, ("accuracy",), True),
])
def test_task_table(name, num_labels, metrics, pair):
    task = get_task(name)
    assert task.num_labels == num_labels
    assert task.metrics == metrics
    assert task.is_pair == pair


def test_mnli_evaluates_matched_and_mismatched_and_uses_hub_label_order():
    mnli = get_task("MNLI")
    assert mnli.eval_splits == ("validation_matched", "validation_mismatched")
    assert mnli.label_names == ("entailment", "neutral", "contradiction")
    assert get_task("stsb").is_regression and not mnli.is_regression
    assert get_task("snli").hub_args == ("stanfordnlp/snli",)
    assert get_task("rte").hub_args == ("nyu-mll/glue", "rte")


def test_unknown_task_lists_choices():
    with pytest.raises(TaskError, match="choose one of: cola, sst2"):
        get_task("colla")


def test_classification_metrics_against_hand_computed_values():
    labels = np.array([1, 1, 0, 0, 1, 0])
    preds = np.array([1, 0, 0, 1, 1, 0])
    # tp=2 fp=1 fn=1 tn=2: accuracy 4/6, precision = recall = 2/3, f1 = 2/3
    out = compute_metrics(get_task("mrpc"), preds, labels)
    assert out["accuracy"] == pytest.approx(4 / 6)
    assert out["f1"] == pytest.approx(2 / 3)
    # MCC = (tp*tn - fp*fn) / sqrt((tp+fp)(tp+fn)(tn+fp)(tn+fn)) = (4-1)/sqrt(3*3*3*3) = 1/3
    mcc = compute_metrics(get_task("cola"), preds, labels)["matthews_correlation"]
    assert mcc == pytest.approx(1 / 3)


def test_regression_metrics_against_hand_computed_values():
    labels = np.array([1.0, 2.0, 3.0, 4.0])
    preds = np.array([1.0, 3.0, 2.0, 4.0])
    out = compute_metrics(get_task("stsb"), preds, labels)
    # Spearman on ranks: 1 - 6*sum(d^2)/(n(n^2-1)) = 1 - 6*2/60 = 0.8; Pearson equals it here
    assert out["spearmanr"] == pytest.approx(0.8)
    assert out["pearson"] == pytest.approx(0.8)
    constant = compute_metrics(get_task("stsb"), np.ones(4), labels)
    assert constant["pearson"] is None  # undefined, never 0.0 (tests/test_hostile_input.py)


def test_predictions_from_logits():
    logits = np.array([[0.1, 0.9], [2.0, -1.0]])
    assert predictions_from_logits(get_task("sst2"), logits).tolist() == [1, 0]
    logits = np.array([[0.5], [4.0]])
    assert predictions_from_logits(get_task("stsb"), logits).tolist() == [0.5, 4.0]


def test_metrics_reject_mismatched_or_empty_inputs():
    with pytest.raises(ValueError, match="3 predictions for 2 labels"):
        compute_metrics(get_task("sst2"), np.array([1, 0, 1]), np.array([1, 0]))
    with pytest.raises(ValueError, match="empty"):
        compute_metrics(get_task("sst2"), np.array([]), np.array([]))
