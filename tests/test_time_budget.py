"""The chapters' time lines (d2l_utils.pages.time_budget): the FLOP arithmetic, the T4 estimate
from a measured throughput, and the runs read from the notebooks' own parameters cells."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from d2l_utils import flops
from d2l_utils.pages import time_budget as tb
from d2l_utils.pages.references import RUN_GLUE_ANCHOR
from d2l_utils.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
BERT_BASE_N = 12 * 7_087_872   # one bert-base encoder layer has 7,087,872 parameters
CHAPTERS = range(1, 7)


def test_encoder_params_of_bert_base_roberta_base_and_d2l():
    assert flops.encoder_params(flops.load_backbone("bert-base-uncased")) == BERT_BASE_N
    assert flops.encoder_params(flops.load_backbone("roberta-base")) == BERT_BASE_N
    assert tb.backbone_shape("bert.small") == flops.Shape(2, 256, 512)
    assert flops.load_backbone("distilbert-base-uncased") == flops.Shape(6, 768, 3072)


def test_encoder_params_match_a_transformers_model_built_from_the_shipped_config():
    from transformers import AutoConfig, AutoModel

    config = json.loads((flops.CONFIG_DIR / "tiny-bert.json").read_text())
    model = AutoModel.from_config(AutoConfig.for_model(**config))
    assert flops.encoder_params(flops.load_backbone("tiny-bert")) == \
        sum(p.numel() for p in model.encoder.parameters())


def test_k_factors():
    assert tb.k_factor is flops.k_factor   # notebook 06 imports it from the page module
    assert tb.k_factor("full", 12) == 6
    assert tb.k_factor("freeze", 12, trainable_layers=1) == pytest.approx(2 + 4 / 12)
    assert tb.k_factor("freeze", 12, trainable_layers=12) == pytest.approx(6)
    for method in ("lora", "prefix", "ptuning-v2", "prompt-tuning", "bitfit"):
        assert tb.k_factor(method, 12) == 4
    with pytest.raises(ValueError, match="unknown method"):
        tb.k_factor("adapter-fusion", 12)
    assert tb.k_factor("freeze", 12, trainable_layers=0) == 2  # head only: forward pass alone
    with pytest.raises(ValueError, match=r"0\.\.12"):
        tb.k_factor("freeze", 12, trainable_layers=13)


def test_run_flops_by_hand():
    n = BERT_BASE_N
    cola = TASKS["cola"].official_sizes   # train 8,551, validation 1,043
    run = tb.Run("cola", "full", "bert-base-uncased", epochs=2, batch_size=16,
                 eval_every_steps=500)
    # 535 steps an epoch, 1,070 in all: 2 evaluations after the epochs, 2 at steps 500, 1000
    expected = (6 * n * cola["train"] * 2 + 2 * n * cola["validation"] * 4) * 128
    assert tb.run_flops(run) == pytest.approx(expected)
    # LoRA r=2 on roberta-base's query and value: 73,728 parameters, 6 FLOPs each per token;
    # prompt tuning's virtual tokens lengthen every example; trials repeat the run
    lora = tb.Run("cola", "lora", "roberta-base", epochs=1, batch_size=16, rank=2, repeats=3,
                  extra_tokens=20, train_fraction=0.5, eval_cap=100)
    train = round(cola["train"] * 0.5)
    expected = ((4 * n + 6 * 73_728) * train + 2 * (n + 73_728) * 100) * 148 * 3
    assert tb.run_flops(lora) == pytest.approx(expected)


def test_t4_estimate_from_the_cited_anchor():
    throughput = tb.t4_throughput(None)
    tokens = TASKS["mnli"].official_sizes["train"] * 3 * 128
    mfu = 6 * BERT_BASE_N * tokens / 4626 / 130e12   # 1:17:06 on a Titan RTX, fp16
    assert RUN_GLUE_ANCHOR.seconds["fp16"] == 4626
    assert throughput.mfu == pytest.approx(mfu)
    assert throughput.flops_per_s == pytest.approx(65e12 * mfu)   # the T4's datasheet peak
    assert "cited, not measured" in throughput.source and "Titan RTX" in throughput.source
    # the anchor's own run, scaled to the T4: its time x the ratio of the two peaks
    run = tb.Run("mnli", "full", "bert-base-uncased", 3, 32, eval_splits=("validation_matched",),
                 eval_cap=1)
    hours = tb.run_hours(run, throughput)
    assert hours == pytest.approx(4626 * 130 / 65 / 3600, rel=1e-3)
    # fp32 takes the anchor's fp32/fp16 time ratio longer
    fp32 = tb.Run(**{**run.__dict__, "precision": "fp32"})
    assert tb.run_hours(fp32, throughput) == pytest.approx(hours * 9323 / 4626)


def test_t4_estimate_from_a_gpu_check():
    check = {"device_name": "NVIDIA H100", "device": "cuda",
             "settings": {"model": "bert-base-uncased"}, "peaks": {"datasheet": 989e12},
             "bench": [{"flops_per_param": 6.0, "library_loop": {"tokens_per_s": 1e5}},
                       {"flops_per_param": 4.0, "library_loop": {"tokens_per_s": 3e5}},
                       {"flops_per_param": 4.0, "library_loop": {"tokens_per_s": 2e5}}]}
    throughput = tb.t4_throughput(check)
    mfu = 4.0 * 2e5 * BERT_BASE_N / 989e12   # the median of the three jobs
    assert throughput.mfu == pytest.approx(mfu)
    assert throughput.flops_per_s == pytest.approx(65e12 * mfu)
    assert "NVIDIA H100" in throughput.source and "gpu_check" in throughput.source
    # a check without timed jobs falls back on the anchor
    assert tb.t4_throughput({**check, "bench": []}) == tb.t4_throughput(None)


def test_runs_come_from_the_gpu_profile_of_the_parameters_cell(monkeypatch):
    monkeypatch.delenv("D2L_PROFILE", raising=False)
    monkeypatch.setenv("D2L_TINY", "1")   # as under nbval: the estimate still reads the gpu profile
    params = tb.gpu_parameters(3)
    assert os.environ["D2L_TINY"] == "1" and "D2L_PROFILE" not in os.environ   # restored
    assert params["MODEL"] == "bert-base-uncased"
    runs = tb.chapter_runs(3)
    assert [r.label for r in runs] == list(params["RECIPES"])
    assert [(r.batch_size, r.epochs) for r in runs] == \
        [(r["batch_size"], r["epochs"]) for r in params["RECIPES"].values()]
    assert {r.precision for r in tb.chapter_runs(1)} == {"fp32"}
    # overrides replace a setting before the runs are built
    assert {r.task for r in tb.chapter_runs(2, TASK="mnli")} == {"mnli"}
    ch2 = tb.gpu_parameters(2)
    search = tb.chapter_runs(2)[1]
    assert (search.repeats, search.train_fraction) == (ch2["N_TRIALS"], ch2["SEARCH_FRACTION"])
    ch5 = tb.gpu_parameters(5)   # its RECIPES on each task, as chapter 3's
    assert [(r.task, r.label) for r in tb.chapter_runs(5)] == \
        [(task, name) for task in ch5["TASKS"] for name in ch5["RECIPES"]]
    assert [r.rank for r in tb.chapter_runs(5) if r.method == "lora"] == 2 * ch5["RANKS"]
    for chapter in CHAPTERS:
        assert tb.chapter_runs(chapter), chapter
    with pytest.raises(ValueError, match="no notebook"):
        tb.chapter_runs(9)


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_each_chapter_prints_its_times_from_the_module(chapter):
    cells = json.loads(tb.notebook_path(chapter).read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    assert f"chapter_time({chapter})" in code[1], (
        f"chapter {chapter}: the cell after the install cell must call chapter_time({chapter})")
    # the header carries no hand-typed time: the measured and the estimated one are printed
    header = "".join(cells[0]["source"])
    typed = re.findall(r"\d+(?:[.,–-]\d+)*\s*(?:h\b|hours?|min\b|minutes?)", header)
    assert not typed, f"chapter {chapter}: hand-typed time in the header: {typed}"


def page_tables() -> dict:
    """The table functions the Time budget page defines in a code cell of book/time_budget.md."""
    page = (ROOT / "book" / "time_budget.md").read_text(encoding="utf-8")
    cells = re.findall(r"```\{code-cell\} ipython3\n(?::tags: [^\n]*\n)?(.*?)```", page, re.S)
    namespace: dict = {}
    exec(next(cell for cell in cells if "def totals_frame" in cell), namespace)
    return namespace


def test_chapter_text_and_page_frames_agree():
    throughput = tb.t4_throughput(None)
    text = tb.estimate_text(3, throughput)
    runs = tb.chapter_runs(3)
    total = tb.format_hours(sum(tb.run_hours(r, throughput) for r in runs))
    assert f"ESTIMATED about {total}" in text and "not a timing" in text
    assert "\n" not in text  # one line in the chapter's header
    frames, page = {"chapter 3": runs}, page_tables()
    assert page["totals_frame"](frames, throughput).loc["chapter 3", "T4 estimate"] == total
    assert len(page["estimate_frame"](frames, throughput)) == len(runs)
    assert list(page["measured_frame"]().index) == list(CHAPTERS)


def test_format_hours():
    assert [tb.format_hours(h) for h in (0.001, 0.5, 2.345)] == ["<1 min", "30 min", "2.3 h"]
