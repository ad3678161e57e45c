"""benchmarks/gpu_check.py without a GPU: the same parts as on a GPU, with tiny settings, the
files they write, what the book reads from them, and the refusals (exit 2, one error line)."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch

from benchmarks.gpu_check_tables import WAYS, gpu_check_tables
from d2l_utils.flops import load_gpu_check

ROOT = Path(__file__).resolve().parent.parent
cpu_only = pytest.mark.skipif(torch.cuda.is_available(), reason="what a CPU run does")


@pytest.fixture(scope="module")
def gpu_check():
    """benchmarks/gpu_check.py as a module."""
    path = ROOT / "benchmarks" / "gpu_check.py"
    spec = importlib.util.spec_from_file_location("gpu_check", path)
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def cpu_run(gpu_check, tmp_path_factory) -> tuple[int, Path]:
    """A CPU run of the throughput and precision parts (.ci/run runs the resume part too)."""
    out = tmp_path_factory.mktemp("gpu_check_out")
    return gpu_check.main(["--out", str(out), "--skip", "resume", "chapter"]), out


@cpu_only
def test_a_cpu_run_writes_the_json_and_the_summary(cpu_run, gpu_check):
    code, out = cpu_run
    assert code == 0
    summary = json.loads((out / "gpu_check.json").read_text())
    assert summary["format"] == "d2l-gpu-check/1" and summary["complete"]
    assert summary["device"] == "cpu" and summary["compute_capability"] is None
    assert summary["settings"]["model"] == "tiny-bert" and summary["settings"]["data"] == "fixtures"
    assert summary["precisions"]["picked"] == "no" and "no" in summary["precisions"]["supported"]
    assert summary["peaks"]["datasheet"] is None and summary["peaks"]["measured"] > 0
    assert {k: p["status"] for k, p in summary["parts"].items()} == {
        "bench": "passed", "precision": "passed", "resume": "skipped", "chapter": "skipped"}
    assert summary["parts"]["chapter"]["reason"] == "--skip"
    jobs = {(job["task"], job["method"]): job for job in summary["bench"]}
    assert set(jobs) == set(gpu_check.CPU_PLAN.benches)
    assert jobs["sst2", "full"]["flops_per_param"] == 6.0
    assert jobs["stsb", "lora"]["flops_per_param"] == 4.0  # frozen backbone
    for job in jobs.values():
        for name in WAYS:
            way = job[name]
            assert way["precision"] == "no" and way["examples_per_s"] > 0
            assert way["mfu"] == pytest.approx(job["flops_per_param"] * job["params"]["total"]
                                               * way["tokens_per_s"]
                                               / summary["peaks"]["measured"], rel=1e-3,
                                               abs=1e-5)
            assert "mfu_datasheet" not in way  # no datasheet peak for a CPU
    runs = summary["precision"]["runs"]
    assert [(r["precision"], r["way"]) for r in runs if r["precision"] == "no"] == [
        ("no", "library_loop"), ("no", "hf_trainer_grouped")]
    assert all(r["speedup_vs_fp32"] == 1.0 for r in runs if r["precision"] == "no")
    text = (out / "SUMMARY.md").read_text()
    assert text.startswith("# GPU check: CPU")
    assert "## Throughput: the four ways" in text
    assert "| stsb | lora | library loop | fp32 |" in text


@cpu_only
def test_the_book_reads_gpu_runs_only(cpu_run):
    _, out = cpu_run
    assert load_gpu_check(out) is None  # a CPU run's file is no GPU result
    assert load_gpu_check(out / "missing.json") is None
    summary = load_gpu_check(out, require_gpu=False)
    frames = gpu_check_tables(summary)
    assert [f.attrs["title"] for f in frames] == [
        "Device and peaks", "Throughput: the four ways", "Precision", "Checks"]
    throughput = frames[1]
    assert len(throughput) == 4 * len(summary["bench"])
    assert set(throughput["FLOPs/token"]) == {"6N", "4N"}
    checks = frames[3].set_index("part")
    assert checks.loc["chapter 5 (rehearsal caps)", "result"] == "--skip"
    gpu = {**summary, "device": "cuda"}
    path = out / "gpu" / "gpu_check.json"
    path.parent.mkdir()
    path.write_text(json.dumps(gpu))
    assert load_gpu_check(path)["device"] == "cuda"


@cpu_only
@pytest.mark.parametrize("argv", [[], ["--out", "benchmarks/gpu"],
                                  ["--out", str(ROOT / "benchmarks" / "gpu" / "sub")]])
def test_a_cpu_run_never_writes_into_the_committed_gpu_folder(gpu_check, capsys, argv):
    with pytest.raises(SystemExit) as exited:
        gpu_check.main(argv + ["--budget-s", "1"])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: this machine has no GPU")
    assert "--out DIR" in err[0]


@pytest.mark.parametrize("argv, says", [
    (["--budget-s", "0"], "--budget-s must be > 0"),
    (["--data-dir", "{tmp}"], "no SST-2/ or STS-B/ folder"),
])
def test_bad_arguments_are_one_error_line(gpu_check, capsys, tmp_path, argv, says):
    with pytest.raises(SystemExit) as exited:
        gpu_check.main([a.format(tmp=tmp_path) for a in argv])
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and says in err[0]


def test_flops_per_token_by_method(gpu_check):
    assert gpu_check.flops_per_param("bert-base-uncased", "full", 1) == 6.0
    assert gpu_check.flops_per_param("bert-base-uncased", "lora", 1) == 4.0
    assert gpu_check.flops_per_param("bert-base-uncased", "freeze", 1) == pytest.approx(2 + 4 / 12)


def test_the_largest_metric_difference(gpu_check):
    a = gpu_check.numbers({"metrics": {"validation": {"accuracy": 0.5, "loss": 0.7}},
                           "history": [{"epoch": 1, "accuracy": 0.25, "done": True}]})
    assert a == {"metrics.validation.accuracy": 0.5, "metrics.validation.loss": 0.7,
                 "history.0.epoch": 1.0, "history.0.accuracy": 0.25}
    b = {**a, "metrics.validation.loss": 0.75}
    assert gpu_check.largest_difference(a, b) == (pytest.approx(0.05),
                                                  "metrics.validation.loss")
    assert gpu_check.largest_difference(a, a)[0] == 0.0
    with pytest.raises(gpu_check.CheckError, match="different values"):
        gpu_check.largest_difference(a, {})


def test_the_chapter_harness_runs_a_notebook_and_reads_its_records(gpu_check, tmp_path):
    """The chapter part's harness (tests/test_rehearsal.py's kernel) on a one-cell notebook."""
    import test_rehearsal as rehearsal

    notebook = tmp_path / "tiny.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        "from d2l_utils.arguments import RunArguments\n"
        "from d2l_utils.training import train\n"
        "train(RunArguments(task='sst2', method='lora', tiny=True, max_steps=2,"
        " output_dir='runs/sst2-lora', progress=False))")]), notebook)
    work = tmp_path / "work"
    work.mkdir()
    chapter: dict = {}
    gpu_check.run_chapter(rehearsal, work, gpu_check.tiny_kernel_env(rehearsal, work), chapter,
                          expected=None, notebook=notebook)
    (run,) = chapter["records"]
    assert (run["task"], run["method"], run["steps"]) == ("sst2", "lora", 2)
    assert run["device"].startswith("CPU") and run["caps"]["max_steps"] == 2
    assert chapter["seconds"] > 0 and chapter["slowest_cells"]


def test_chapter_records_are_checked_against_the_rehearsals_expectation(gpu_check):
    record = {"model": "roberta-base", "task": "cola", "device": "NVIDIA H100 80GB HBM3",
              "args": {"output_dir": "runs/x"}}
    expected = ("roberta-base", 2, {"cola"})
    gpu_check.check_chapter_records([record, record], expected)
    with pytest.raises(gpu_check.CheckError, match="expected 2 records"):
        gpu_check.check_chapter_records([record], expected)
    with pytest.raises(gpu_check.CheckError, match="on the CPU"):
        gpu_check.check_chapter_records([record, {**record, "device": "CPU (x86_64)"}],
                                        expected)
    with pytest.raises(gpu_check.CheckError, match="no run record"):
        gpu_check.check_chapter_records([], None)


def test_without_olah_the_chapter_part_says_how_to_prepare(gpu_check, tmp_path, monkeypatch):
    monkeypatch.setenv("D2L_OLAH_VENV", str(tmp_path / "no-venv"))
    result: dict = {"chapter": {}}
    budget = gpu_check.Budget(100.0, time.perf_counter())
    with pytest.raises(gpu_check.SkipPart, match="gpu_check.py --prepare"):
        gpu_check.chapter_part(gpu_check.GPU_PLAN, tmp_path, budget, result)
    assert result["chapter"]["profile"] == "gpu"
