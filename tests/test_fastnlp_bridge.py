"""The fastNLP bridge (chapter 4): the wrapper's contract, what trains, parameter counts of
shallow vs deep prompts, and a learning run of the fastNLP Trainer on the SST-2 fixture."""

import json

import matplotlib
import pytest
import torch

from d2l_utils.arguments import RunArguments
from d2l_utils.pages.plots import plot_training, records_table
from d2l_utils.training import prepare_run, train
from d2l_utils.training.fastnlp import (
    FastNLPClassifier,
    expected_prompt_params,
    make_dataloaders,
    parse_fastnlp_results,
    prompt_placement,
    run_fastnlp,
)

matplotlib.use("Agg")
pytest.importorskip("fastNLP")

PROMPT_MARKERS = ("prompt_encoder.",)
HEAD_MARKERS = ("classifier.",)


def tiny_args(tmp_path, **options) -> RunArguments:
    defaults = {"task": "sst2", "tiny": True, "method": "prompt-tuning", "progress": False,
                "save_model": False, "output_dir": str(tmp_path)}
    return RunArguments(**{**defaults, **options})


def test_wrapper_returns_the_keys_fastnlp_expects(tmp_path):
    run = prepare_run(tiny_args(tmp_path))
    train_loader, eval_loaders = make_dataloaders(run)
    batch = next(iter(train_loader))
    assert type(batch) is dict and {"input_ids", "attention_mask", "labels"} <= set(batch)
    wrapper = FastNLPClassifier(run.model)
    out = wrapper.train_step(**batch)
    assert set(out) == {"loss"} and out["loss"].ndim == 0 and out["loss"].requires_grad
    wrapper.eval()
    with torch.no_grad():
        out = wrapper.evaluate_step(**next(iter(eval_loaders["validation"])))
    assert set(out) == {"pred", "target"}
    assert out["pred"].shape == out["target"].shape and out["pred"].dtype == torch.long


@pytest.mark.parametrize("method", ["prompt-tuning", "ptuning-v2"])
def test_only_the_prompt_and_the_head_change(tmp_path, method):
    run = prepare_run(tiny_args(tmp_path, method=method, epochs=1, eval_every_steps=3))
    before = {n: p.detach().clone() for n, p in run.model.named_parameters()}
    trainable = {n for n, p in run.model.named_parameters() if p.requires_grad}
    on_top = HEAD_MARKERS + ("pooler.",)  # BERT's pooler trains with a training head
    assert trainable and all(any(m in n for m in PROMPT_MARKERS + on_top)
                             for n in trainable), sorted(trainable)
    assert any(any(m in n for m in PROMPT_MARKERS) for n in trainable)
    result = run_fastnlp(run, verbose=False)
    changed = {n for n, p in run.model.named_parameters() if not torch.equal(p, before[n])}
    assert changed and changed <= trainable, sorted(changed - trainable)
    assert any(any(m in n for m in PROMPT_MARKERS) for n in changed)
    assert result.steps == 7  # 56 fixture examples, batch 8
    assert [h["step"] for h in result.history] == [7]  # dev accuracy at the epoch's end
    assert [e["step"] for e in result.eval_log] == [3, 6]  # and every 3 steps within it
    assert 0 <= result.eval_log[0]["validation"]["accuracy"] <= 1


def test_shallow_and_deep_prompt_counts():
    table = prompt_placement("tiny-bert", num_virtual_tokens=20)  # 2 layers, hidden 64
    assert (table["prompt params (counted)"] == table["prompt params (formula)"]).all()
    assert table.loc["prompt-tuning", "prompt params (counted)"] == 20 * 64
    assert table.loc["ptuning-v2", "prompt params (counted)"] == 2 * 2 * 20 * 64
    assert table.loc["prompt-tuning", "head params"] == table.loc["ptuning-v2", "head params"]


def test_bert_base_prompt_counts_match_the_formulas():
    table = prompt_placement("bert-base-uncased", num_virtual_tokens=20)
    assert table.loc["prompt-tuning", "prompt params (counted)"] == 15_360  # 20 x 768
    assert table.loc["ptuning-v2", "prompt params (counted)"] == 368_640  # 12 x 2 x 20 x 768
    # the linear head (768 x 2 + 2) and the pooler it reads (768 x 768 + 768), both training
    assert table.loc["ptuning-v2", "head params"] == 1_538 + 590_592
    assert expected_prompt_params("ptuning-v2", 20, 768, 6) == 184_320  # distilbert


@pytest.mark.slow
def test_fastnlp_trainer_learns_with_a_pretrained_model(tmp_path):
    """P-Tuning v2 on pretrained MiniLM, 3 epochs of the SST-2 fixture (no warmup, the default
    lr): dev accuracy rises from chance and the training loss falls. (2 epochs were enough only
    while the 56 examples were batched fully sorted by length; with batches mixed as the library
    now makes them, 14 steps are too few.)"""
    record = train(tiny_args(tmp_path, model="minilm-l6", method="ptuning-v2", trainer="fastnlp",
                             epochs=3, warmup_ratio=0.0, log_every=1), verbose=False)
    history = record["history"]
    accuracies = [h["validation"]["accuracy"] for h in history]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert accuracies[-1] >= 0.75 and accuracies[-1] > accuracies[0], accuracies
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    assert record["trainer"] == "fastnlp" and record["steps"] == 21
    assert record["metrics"]["validation"]["accuracy"] == accuracies[-1]
    assert record["main_metric"]["value"] == accuracies[-1]
    assert record["train_examples_per_s"] > 0 and record["wall_time_s"] > 0
    assert len(record["loss_log"]) == 21
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert on_disk["history"] == history
    # the record is drawn and tabulated like any library run
    assert len(plot_training([record]).axes) == 2
    assert records_table([record]).loc[0, "value"] == round(accuracies[-1], 4)


def test_capped_epochs_count_passes_over_the_training_set(tmp_path):
    """2 epochs of 2 of the fixture's 7 batches are 4/7 of a pass, not 2 epochs (chapter 4's
    table once said "epochs 2.000" for runs that saw a seventh of SST-2)."""
    record = train(tiny_args(tmp_path, trainer="fastnlp", epochs=2, train_batches_per_epoch=2),
                   verbose=False)
    assert record["steps"] == 4 and record["data"]["train_examples"] == 56
    assert record["epochs_run"] == round(4 / 7, 4)


def test_results_parsing_and_clear_errors(tmp_path):
    assert parse_fastnlp_results({"acc#acc": 0.5, "total#acc": 4}, ("validation",)) == {
        "validation": {"accuracy": 0.5}}
    splits = ("validation_matched", "validation_mismatched")
    parsed = parse_fastnlp_results({"acc#acc#validation_matched": 0.25,
                                    "acc#acc#validation_mismatched": 0.75}, splits)
    assert parsed["validation_mismatched"] == {"accuracy": 0.75}
    with pytest.raises(ValueError, match="matthews_correlation"):
        tiny_args(tmp_path, task="cola", trainer="fastnlp")
    with pytest.raises(ValueError, match="whole epochs"):
        tiny_args(tmp_path, max_steps=3, trainer="fastnlp")
    with pytest.raises(ValueError, match="method must be one of"):
        expected_prompt_params("lora", 20, 64, 2)


def test_the_course_setup_on_distilbert():
    """The course model: a shallow prompt on DistilBERT with everything else frozen trains
    20 x 768 values; peft's deep prompts cannot run there (no past keys/values)."""
    table = prompt_placement("distilbert-base-uncased", num_virtual_tokens=20, head="frozen")
    assert table.loc["prompt-tuning", "trainable"] == 15_360
    assert table.loc["ptuning-v2", "trainable"] == 184_320  # 6 x 2 x 20 x 768
    assert table.loc["prompt-tuning", "forward pass"] == "ok"
    assert table.loc["ptuning-v2", "forward pass"].startswith("fails:")
