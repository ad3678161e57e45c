"""The Colab time-budget estimate (benchmarks/time_budget.py): FLOP arithmetic and the table.

Nothing here reads the shared GLUE data: the CLI runs with --stored-tokens, and measuring is
tested on small files written to a temporary folder with a stand-in tokenizer.
"""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "time_budget.py"


def _load():
    spec = importlib.util.spec_from_file_location("time_budget", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module   # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


tb = _load()
BERT_BASE_N = 12 * 7_087_872   # SPEC: one bert-base encoder layer has 7,087,872 parameters


def test_non_embedding_params_of_bert_base_and_roberta_base():
    assert tb.non_embedding_params(tb.load_backbone("bert-base-uncased")) == BERT_BASE_N
    assert tb.non_embedding_params(tb.load_backbone("roberta-base")) == BERT_BASE_N
    assert tb.non_embedding_params(tb.load_backbone("bert-base-uncased (adapters)")) == BERT_BASE_N
    # d2l's attention has no biases: 4h fewer per layer
    small = tb.load_backbone("d2l bert.small")
    assert tb.non_embedding_params(small) == 2 * (4 * 256**2 + 2 * 256 * 512 + 5 * 256 + 512)


def test_formula_matches_a_transformers_model_built_from_the_shipped_config():
    from transformers import AutoConfig, AutoModel

    config = json.loads((tb.CONFIG_DIR / "tiny-bert.json").read_text())
    model = AutoModel.from_config(AutoConfig.for_model(**config))
    encoder = sum(p.numel() for p in model.encoder.parameters())
    assert tb.non_embedding_params(tb.backbone_from_config("tiny-bert", config)) == encoder


def test_full_fine_tuning_flops_by_hand():
    # L=1, h=2, i=4: N = 4*4 + 2*2*4 + 9*2 + 4 = 54
    backbone = tb.Backbone("toy", layers=1, hidden=2, intermediate=4)
    assert tb.non_embedding_params(backbone) == 54
    run = tb.Run(2, "cola", "full", "toy", epochs=2)
    data = tb.TaskData(train=100, eval=10, eval_splits="dev")
    tokens, train, evaluation = tb.run_flops(run, backbone, data, tb.TokenMean(5, 7, "test"))
    assert tokens == 100 * 2 * 5 == 1_000
    assert train == 6 * 54 * 1_000 == 324_000
    assert evaluation == 2 * 54 * (10 * 2 * 7) == 15_120


def test_bert_base_full_run_by_hand():
    run = tb.Run(2, "sst2", "full", "bert-base-uncased", epochs=1)
    data = tb.TaskData(train=1_000, eval=0, eval_splits="none")
    backbone = tb.load_backbone("bert-base-uncased")
    _, train, evaluation = tb.run_flops(run, backbone, data, tb.TokenMean(10, 10, "test"))
    assert train == pytest.approx(6 * 85_054_464 * 10_000) == pytest.approx(5.10326784e12)
    assert evaluation == 0
    # 65 TFLOP/s at MFU 0.5 for one hour is 1.17e17 FLOPs
    assert tb.hours_for(65e12 * 0.5 * 3600, 65, 0.5) == pytest.approx(1.0)


def test_k_factors():
    assert tb.k_factor("full", 12) == 6
    assert tb.k_factor("freeze", 12, trainable_layers=1) == pytest.approx(2 + 4 / 12)
    assert tb.k_factor("freeze", 12, trainable_layers=12) == pytest.approx(6)
    for method in ("lora", "prefix", "ptuning-v2", "prompt-tuning", "bitfit"):
        assert tb.k_factor(method, 12) == 4
    with pytest.raises(ValueError, match="unknown method"):
        tb.k_factor("adapter-fusion", 12)
    with pytest.raises(ValueError):
        tb.k_factor("freeze", 12, trainable_layers=0)


def test_peft_rows_use_k4_plus_their_lora_matrices():
    peft = [run for run in tb.RUNS if run.method in tb.FROZEN_BACKBONE]
    assert {run.method for run in peft} == set(tb.FROZEN_BACKBONE)
    data = tb.TaskData(train=10, eval=0, eval_splits="none")
    tokens = tb.TokenMean(3, 3, "test")
    for run in peft:
        backbone = tb.load_backbone(run.backbone)
        n = tb.non_embedding_params(backbone)
        count, train, _ = tb.run_flops(run, backbone, data, tokens)
        assert count == 10 * run.epochs * (3 + run.extra_tokens)
        assert train == pytest.approx((4 * n + 6 * run.added_params) * count)
    # the LoRA sizes are the seeds' counts on q and v
    lora = {run.label: run.added_params for run in tb.RUNS if run.chapter == 5
            and run.task == "cola" and run.method == "lora"}
    assert lora == {"LoRA r=2": 73_728, "LoRA r=8": 294_912, "LoRA r=64": 2_359_296,
                    "LoRA r=256": 9_437_184}


def test_a_run_over_the_session_is_marked_to_be_split():
    assert tb.session_verdict(13, 26, 12).startswith("no: split")
    assert "--resume" in tb.session_verdict(13, 26, 12)
    assert tb.session_verdict(8, 16, 12).startswith("maybe")
    assert tb.session_verdict(3, 6, 12) == "yes"
    # MNLI full fine-tuning for 200 epochs is far over 12 hours (3 epochs: about 20 min)
    long_run = tb.Run(2, "mnli", "full", "bert-base-uncased", epochs=200)
    estimate = tb.estimate(long_run, tb.FALLBACK_TOKENS["mnli"], 65, 0.30)
    assert estimate.hours > 12 and "split" in estimate.verdict
    assert estimate.hours_fast < estimate.hours < estimate.hours_slow


def test_printed_table_has_one_row_per_run(capsys, monkeypatch):
    def no_measuring(*args, **kwargs):
        raise AssertionError("--stored-tokens must not measure")

    monkeypatch.setattr(tb, "measure_token_means", no_measuring)
    assert tb.main(["--stored-tokens"]) == 0
    blocks = capsys.readouterr().out.split("\n\n")
    runs_table = next(block for block in blocks if block.startswith("| ch |"))
    rows = runs_table.splitlines()[2:]
    assert len(rows) == len(tb.RUNS) == 49
    assert all(row.count(" | ") == 10 for row in rows)
    assert sum("assumed, not measured" in row for row in rows) == 2 + 6 + 3   # ch 1, 2, 3
    totals = next(block for block in blocks if block.startswith("| chapter |"))
    assert len(totals.splitlines()) == 2 + 6


def test_token_means_fall_back_without_data(tmp_path):
    assert tb.token_means(None) == tb.FALLBACK_TOKENS
    assert tb.token_means(tmp_path / "missing") == tb.FALLBACK_TOKENS
    assert tb.FALLBACK_TOKENS["mnli"].source == "assumed, not measured"


class _WhitespaceTokenizer:
    """Stands in for a WordPiece tokenizer: words plus [CLS]/[SEP]."""

    def __call__(self, texts, pairs=None, truncation=True, max_length=128):
        ids = []
        for i, text in enumerate(texts):
            count = len(text.split()) + 2
            if pairs is not None:
                count += len(pairs[i].split()) + 1
            ids.append(list(range(min(count, max_length))))
        return {"input_ids": ids}


def test_measure_token_means_reads_the_glue_layout(tmp_path):
    files = {
        "SST-2": "sentence\tlabel\na b c\t1\na \"quoted\t0\n",
        "CoLA": "gj04\t1\t\tone two three four\ngj04\t0\t*\tone two\n",
        "STS-B": ("index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\t"
                  "sentence2\tscore\n0\tg\tf\ty\t0\tn\tn\ta b\tc d e\t5.0\n"),
    }
    for folder, text in files.items():
        (tmp_path / folder).mkdir()
        for split in ("train", "dev"):
            (tmp_path / folder / f"{split}.tsv").write_text(text, encoding="utf-8")
    means = tb.measure_token_means(tmp_path, _WhitespaceTokenizer())
    assert means["sst2"] == tb.TokenMean(4.5, 4.5, "measured")     # (3+2 + 2+2) / 2
    assert means["cola"] == tb.TokenMean(5.0, 5.0, "measured")     # (4+2 + 2+2) / 2
    assert means["stsb"] == tb.TokenMean(8.0, 8.0, "measured")     # 2 + 3 + 3
    (tmp_path / "SST-2" / "dev.tsv").write_text("text\tlabel\nx\t1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="no column"):
        tb.measure_token_means(tmp_path, _WhitespaceTokenizer())


def test_padded_token_means_and_implied_mfu():
    padded = tb.padded_token_means(128)
    assert set(padded) == set(tb.TASKS) and padded["cola"].train == 128
    # 6 * 10 params * 100 examples * 1 epoch * 10 tokens = 60,000 FLOPs in 1 s at 1e-7 TFLOP/s
    assert tb.implied_mfu(100, 1, 10, 1.0, 10, 1e-7) == pytest.approx(0.6)
