"""The Colab time-budget estimate (d2l_utils.pages.time_budget): FLOP arithmetic, fixed costs,
the anchor calibration, the tables, and agreement with the chapters' notebooks.

Nothing here reads the shared GLUE data: the CLI runs with --stored-tokens, and measuring is
tested on small files written to a temporary folder with a stand-in tokenizer.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from d2l_utils.hpo import SearchSpace
from d2l_utils.pages import time_budget as tb
from d2l_utils.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
BERT_BASE_N = 12 * 7_087_872   # one bert-base encoder layer has 7,087,872 parameters


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
    shape = tb.backbone_from_config("tiny-bert", config)
    assert tb.non_embedding_params(shape) == encoder
    # embeddings + encoder + pooler: the whole BertModel
    assert tb.model_params(shape) == sum(p.numel() for p in model.parameters())


def test_full_model_size_matches_the_methods_count():
    # bert-base-uncased with a 3-label head trains 109,484,547 parameters (tests/test_figures.py)
    assert tb.model_params(tb.load_backbone("bert-base-uncased")) + 768 * 3 + 3 == 109_484_547


def test_full_fine_tuning_flops_by_hand():
    # L=1, h=2, i=4: N = 4*4 + 2*2*4 + 9*2 + 4 = 54
    backbone = tb.EncoderShape("toy", layers=1, hidden=2, intermediate=4)
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
    # the LoRA sizes are the counts of chapter 5's original notebook, on q and v
    lora = {run.label: run.added_params for run in tb.RUNS if run.chapter == 5
            and run.task == "cola" and run.method == "lora"}
    assert lora == {"LoRA r=2": 73_728, "LoRA r=8": 294_912, "LoRA r=64": 2_359_296,
                    "LoRA r=256": 9_437_184}


def test_steps_evaluations_and_checkpoints_by_hand():
    run = tb.Run(5, "cola", "full", "bert-base-uncased", epochs=2, batch_size=16,
                 eval_every_steps=100, save_every_steps=50)
    data = tb.TaskData(train=1_000, eval=100, eval_splits="dev")
    assert tb.steps_per_repeat(run, data) == 63 * 2 == tb.optimizer_steps(run, data)
    assert tb.evaluations(run, data) == 2 + 1          # after each epoch, and at step 100
    trials = replace(run, repeats=10)
    assert tb.optimizer_steps(trials, data) == 10 * 126
    # the search: a tenth of train, each dev split capped
    search = tb.Run(2, "mnli", "full", "bert-base-uncased", 3, train_fraction=0.1, eval_cap=2000)
    assert tb.task_data(search) == tb.TaskData(39_270, 4_000,
                                               "validation_matched + validation_mismatched")
    # official sizes come from d2l_utils.tasks
    assert tb.task_data(tb.Run(2, "sst2", "full", "x", 1)).train == \
        TASKS["sst2"].official_sizes["train"]
    # fixed costs: per step, a third per evaluation batch, checkpoints at the write speed
    backbone = tb.load_backbone("bert-base-uncased")
    a = tb.Assumptions(mfu={"fp16": 0.5, "fp32": 0.5}, peak_tflops={"fp16": 65, "fp32": 8.1},
                       step_overhead_s=0.03, checkpoint_mb_s=200)
    seconds = tb.run_seconds(run, backbone, data, tb.TokenMean(10, 10, "test"), a)
    assert seconds.steps == pytest.approx(126 * 0.03)
    assert seconds.eval_batches == pytest.approx(math.ceil(100 / 32) * 3 * 0.03 / 3)
    # steps 50 and 100; full fine-tuning saves the whole model and AdamW's two moments
    assert seconds.checkpoints == pytest.approx(2 * 12 * tb.model_params(backbone) / 200e6)
    flops = sum(tb.run_flops(run, backbone, data, tb.TokenMean(10, 10, "test"))[1:])
    assert seconds.compute == pytest.approx(flops / (65e12 * 0.5))


def test_the_estimate_counts_a_fixed_cost_per_step():
    # a run of tiny batches is all fixed cost: one step per example
    run = tb.Run(6, "cola", "full", "bert-base-uncased", epochs=1, batch_size=1)
    est = tb.estimate(run, tb.TokenMean(1, 1, "test"))
    assert est.steps == TASKS["cola"].official_sizes["train"]
    assert est.seconds.steps == pytest.approx(est.steps * tb.STEP_OVERHEAD_S)
    assert est.seconds.fixed > est.seconds.compute
    assert est.hours_fast < est.hours < est.hours_slow


def test_calibrated_mfu_reproduces_the_titan_rtx_anchor():
    anchor = next(a for a in tb.ANCHOR_RUNS if a.task == "mnli")
    assert (anchor.examples, anchor.seconds_fp16, anchor.seconds_fp32) == (
        392_702, 77 * 60 + 6, 2 * 3600 + 35 * 60 + 23)
    # with no fixed cost the anchor implies MFU of about 0.13 in fp16
    assert tb.anchor_mfu(anchor, "fp16", 0.0) == pytest.approx(0.128, abs=0.002)
    # the central MFU makes the model reproduce the MNLI time on the Titan RTX exactly
    titan = tb.make_assumptions(peak_tflops=tb.TITAN_RTX_PEAK_TFLOPS["fp16"],
                                fp32_peak_tflops=tb.TITAN_RTX_PEAK_TFLOPS["fp32"])
    for precision in ("fp16", "fp32"):
        run = tb.Run(0, "mnli", "full", "bert-base-uncased", 3, batch_size=tb.ANCHOR_BATCH,
                     precision=precision, eval_splits=("validation_matched",), eval_cap=1)
        backbone = tb.load_backbone(tb.BERT)
        data = replace(tb.task_data(run), eval=0)
        seconds = tb.run_seconds(run, backbone, data, tb.TokenMean(128, 128, "padded"), titan)
        assert seconds.compute + seconds.steps == pytest.approx(anchor.seconds(precision))
    assert tb.make_assumptions().mfu["fp16"] > tb.anchor_mfu(anchor, "fp16", 0.0)
    with pytest.raises(ValueError, match="no time for compute"):
        tb.calibrated_mfu("fp16", step_overhead_s=1.0)


def test_a_run_over_the_session_is_marked_to_be_split():
    assert tb.session_verdict(13, 26, 12).startswith("no: split")
    assert "--resume" in tb.session_verdict(13, 26, 12)
    assert tb.session_verdict(8, 16, 12).startswith("maybe")
    assert tb.session_verdict(3, 6, 12) == "yes"
    # MNLI full fine-tuning for 200 epochs is far over 12 hours (chapter 2's 5: a few hours)
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
    # ch 1: 2, ch 2: 3 per task (recipe, search, best values), ch 3: 3, ch 4: 2, ch 5: 12,
    # ch 6: 21
    assert len(rows) == len(tb.RUNS) == 2 + 9 * 3 + 3 + 2 + 12 + 21
    assert all(row.count(" | ") == len(tb.RUN_COLUMNS_CLI) - 1 for row in rows)
    # ch 2 (six tasks, three runs each) and ch 3; ch 1 counts its fixed padding
    assert sum("assumed, not measured" in row for row in rows) == 6 * 3 + 3
    assert sum("padded to 128" in row for row in rows) == 2
    totals = next(block for block in blocks if block.startswith("| chapter |"))
    assert len(totals.splitlines()) == 2 + 6


def test_token_means_fall_back_without_data(tmp_path):
    assert tb.token_means(None) == tb.FALLBACK_TOKENS
    assert tb.token_means(tmp_path / "missing") == tb.FALLBACK_TOKENS
    assert tb.FALLBACK_TOKENS["mnli"].source == "assumed, not measured"
    assert tb.FALLBACK_TOKENS["sst2"].source == "measured 2026-11-22, stored"


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
    assert set(padded) == set(tb.TASKS) == set(TASKS) and padded["cola"].train == 128
    # 6 * 10 params * 100 examples * 1 epoch * 10 tokens = 60,000 FLOPs in 1 s at 1e-7 TFLOP/s
    assert tb.implied_mfu(100, 1, 10, 1.0, 10, 1e-7) == pytest.approx(0.6)
    # half of the second is fixed cost: twice the MFU
    assert tb.implied_mfu(100, 1, 10, 1.0, 10, 1e-7, steps=5, step_overhead_s=0.1) == \
        pytest.approx(1.2)


# --- the chapters ---------------------------------------------------------------------------

def _parameters_namespace(notebook: str, monkeypatch) -> dict:
    """Run a notebook's `parameters` cell with the real profile and return its variables."""
    monkeypatch.delenv("D2L_TINY", raising=False)
    cells = json.loads((ROOT / notebook).read_text(encoding="utf-8"))["cells"]
    (cell,) = [c for c in cells if "parameters" in c["metadata"].get("tags", [])]
    namespace: dict = {}
    exec("".join(cell["source"]), namespace)  # noqa: S102 - our own notebook's settings
    return namespace


@pytest.mark.parametrize("chapter", sorted(tb.NOTEBOOK_RECIPES))
def test_recipes_mirror_the_notebooks_parameter_cells(chapter, monkeypatch, capsys):
    recipe = tb.NOTEBOOK_RECIPES[chapter]
    namespace = _parameters_namespace(recipe.notebook, monkeypatch)
    for expression, expected in recipe.values.items():
        actual = eval(expression, namespace)  # noqa: S307 - expressions from the module above
        assert actual == expected, (
            f"{recipe.notebook}: {expression} is {actual!r} in the parameters cell (real "
            f"profile) but {expected!r} in d2l_utils.pages.time_budget.NOTEBOOK_RECIPES")


def test_runs_are_built_from_the_recipes():
    by_chapter = {c: [r for r in tb.RUNS if r.chapter == c] for c in range(1, 7)}
    ch2 = tb.NOTEBOOK_RECIPES[2].values
    recipe_runs = [r for r in by_chapter[2] if r.label == "recipe"]
    assert len(recipe_runs) == 9 and all(r.epochs == ch2["EPOCHS"] == 5 for r in recipe_runs)
    assert [r.task for r in by_chapter[2] if r.default] == ["cola"] * 3
    search = next(r for r in by_chapter[2] if r.label.startswith("search"))
    space = SearchSpace()   # what the real profile searches
    assert (search.repeats, search.train_fraction) == (ch2["N_TRIALS"], ch2["SEARCH_FRACTION"])
    assert search.epochs == sum(space.num_train_epochs) / 2
    batches = space.per_device_train_batch_size
    assert min(batches) <= search.batch_size <= max(batches)
    assert by_chapter[2][0].save_every_steps == ch2["SAVE_EVERY_STEPS"]
    assert {r.precision for r in by_chapter[1]} == {"fp32"}
    assert {r.precision for c in range(2, 7) for r in by_chapter[c]} == {"fp16"}
    assert [(r.batch_size, r.epochs) for r in by_chapter[3]] == [(200, 1), (64, 2), (64, 2)]
    assert {(r.batch_size, r.epochs, r.eval_every_steps) for r in by_chapter[5]} == {(16, 10, 200)}
    assert {(r.batch_size, r.epochs) for r in by_chapter[6]} == {(32, 3)}


@pytest.mark.parametrize("chapter", sorted(tb.NOTEBOOK_RECIPES))
def test_each_chapter_prints_its_estimate_from_the_module(chapter):
    recipe = tb.NOTEBOOK_RECIPES[chapter]
    cells = json.loads((ROOT / recipe.notebook).read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert f"chapter_time({chapter})" in code[1], (
        f"{recipe.notebook}: the cell after the install cell must call chapter_time({chapter})")
    # the header's cpu- and gpu-profile text carries no hand-typed time: both are printed
    header = "".join(cells[0]["source"])
    real = header[header.index("- **cpu profile"):]
    typed = re.findall(r"\d+(?:[.,–-]\d+)*\s*(?:h\b|hours?|min\b|minutes?)", real)
    assert not typed, f"{recipe.notebook}: hand-typed time in the header: {typed}"


def test_chapter_text_agrees_with_the_page_tables():
    estimates = tb.estimate_all(tb.RUNS, tb.FALLBACK_TOKENS)
    totals = {row["chapter"]: row for row in tb.total_rows(estimates)}
    for chapter in (1, 3, 4, 5, 6):
        text = tb.chapter_time_text(chapter)
        assert "ESTIMATE" in text and "MFU" in text
        if chapter != 1:
            line = next(x for x in text.splitlines() if x.strip().startswith("all runs"))
            assert totals[str(chapter)]["T4 time"] in line
            assert totals[str(chapter)]["range"] in line
    ch1 = tb.chapter_time_text(1)
    assert totals["1"]["T4 time"] in ch1 and "not run by default" in ch1
    ch2 = tb.chapter_time_text(2)
    for title in ("CoLA <- TASK", "SST-2", "MNLI", "QQP", "WNLI"):
        assert title in ch2
    assert totals["2"]["T4 time"] in next(x for x in ch2.splitlines() if "<- TASK" in x)
    with pytest.raises(ValueError, match="no chapter"):
        tb.chapter_time_text(7)


def test_book_page_frames():
    estimates = tb.estimate_all(tb.RUNS, tb.token_means(None))
    assert len(tb.runs_frame(estimates)) == len(tb.RUNS)
    assert list(tb.totals_frame(estimates).index) == [str(c) for c in range(1, 7)]
    assert len(tb.anchor_frame()) == 9
    frame = tb.assumptions_frame()
    assert "fixed cost per optimizer step" in frame.index and "MFU, fp16" in frame.index
    assert "fp32 and padded to 128" in tb.what_if_frame().columns
    assert "longest" in tb.budget_summary(estimates)


def test_cli_script_prints_a_chapter(tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "time_budget.py"), "--stored-tokens",
         "--chapter", "3"], capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == tb.chapter_time_text(3)
