"""The benchmark scripts run end to end: the shipped fixture files, the tiny random model, the
smallest settings (seconds each). Each checks what the script prints, not only that it exits 0.
`tools/batching_study.py` is smoke-tested in test_batching.py, beside the sampler it measures."""

import ast
import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = [ROOT / "benchmarks" / name
           for name in ("bench.py", "eval_order.py", "cpu_precision.py", "optimizer_step.py")]
SCRIPTS.append(ROOT / "tools" / "batching_study.py")


def load(path: Path):
    """A script as a module, loaded from its file as `python benchmarks/NAME.py` runs it."""
    spec = importlib.util.spec_from_file_location(f"script_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def last_json(text: str) -> dict:
    """The JSON line a benchmark prints last."""
    return json.loads(text.strip().splitlines()[-1])


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


@pytest.mark.parametrize("path", SCRIPTS, ids=lambda p: p.name)
def test_scripts_name_no_path_outside_the_repository(path):
    """Data and models are options; outside docstrings no string points out of the checkout
    (the real GLUE files live in ../shared, which a clone does not have)."""
    tree = ast.parse(path.read_text())
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)
                  and isinstance(node.body[0].value, ast.Constant)}
    strings = [node.value for node in ast.walk(tree) if isinstance(node, ast.Constant)
               and isinstance(node.value, str) and id(node) not in docstrings]
    assert strings  # the walk found the script's strings
    outside = [s for s in strings if "../" in s or "shared/" in s or s.startswith(("/", "~"))]
    assert not outside


def test_eval_order_pads_less_and_keeps_the_metrics(capsys):
    """benchmarks/eval_order.py on the shipped fixtures (its default --data-dir) with the tiny
    model: length order pads no more than file order and gives the same metrics."""
    module = load(ROOT / "benchmarks" / "eval_order.py")
    assert module.main(["--model", "tiny-bert", "--tasks", "sst2", "stsb", "--batch-size", "8",
                        "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    result = last_json(out)
    assert {"model", "device", "torch", "precision", "batch_size", "rows"} <= result.keys()
    assert (result["model"], result["precision"], result["batch_size"]) == ("tiny-bert", "fp32", 8)
    assert [row["task"] for row in result["rows"]] == ["sst2", "stsb"]
    for row in result["rows"]:
        pad = row["padded_tokens"]
        assert row["examples"] > 0
        assert row["real_tokens"] <= pad["length order"] < pad["file order"]
        assert row["max_metric_difference"] < 1e-4
        assert all(positive(s) or s == 0 for s in row["seconds"].values())
        assert positive(row["speedup"])
    table = out.splitlines()[2:4]  # the title, the header, then one row per task
    assert [line.split()[0] for line in table] == ["sst2", "stsb"]


def test_cpu_precision_times_both_precisions(capsys):
    module = load(ROOT / "benchmarks" / "cpu_precision.py")
    assert module.main(["--model", "tiny-bert", "--lengths", "8", "16", "--batch-size", "2",
                        "--steps", "1"]) == 0
    out = capsys.readouterr().out
    result = last_json(out)
    assert {"model", "device", "torch", "native_bf16", "batch_size", "steps",
            "rows"} <= result.keys()
    assert (result["model"], result["batch_size"], result["steps"]) == ("tiny-bert", 2, 1)
    assert [row["length"] for row in result["rows"]] == [8, 16]
    for row in result["rows"]:
        assert all(positive(row[key]) for key in
                   ("fp32_examples_per_s", "bf16_examples_per_s", "bf16_speedup"))
    assert [line.split()[0] for line in out.splitlines()[2:4]] == ["8", "16"]


def test_optimizer_step_runs_from_the_shell(tmp_path):
    """As a script (its `__main__` and argument parsing), from outside the checkout."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false", "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "optimizer_step.py"),
                           "--model", "tiny-bert", "--steps", "1"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = last_json(done.stdout)
    assert {"model", "device", "torch", "steps", "ms_per_step",
            "speedup_vs_for_loop"} <= result.keys()
    assert (result["model"], result["steps"]) == ("tiny-bert", 1)
    variants = ["for-loop", "foreach", "fused"]
    assert list(result["ms_per_step"]) == variants == list(result["speedup_vs_for_loop"])
    assert all(positive(v) for v in result["ms_per_step"].values())
    assert result["speedup_vs_for_loop"]["for-loop"] == 1.0
    assert [line.split()[0] for line in done.stdout.splitlines()[2:5]] == variants


def test_bench_runs_from_the_shell(tmp_path, capsys):
    """benchmarks/bench.py: its --help (in this process: the same parser), and as a script, from
    outside the checkout, a bad option as one `error:` line and exit code 2, as the library's
    commands do (the four ways run in test_bench.py)."""
    from benchmarks.bench import main

    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    help_text = capsys.readouterr().out
    assert exit_.value.code == 0
    assert help_text.startswith("usage: python benchmarks/bench.py [options]")
    assert "timed optimizer steps per way [at least 1] (default: 30)" in " ".join(
        help_text.split())  # argparse wraps the help at the terminal's width
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "CUDA_VISIBLE_DEVICES": ""}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench.py"), "--tiny",
                           "--task", "sst2", "--batch-size", "0"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr == "error: --batch-size must be at least 1, got 0\n"
