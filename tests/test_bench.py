"""`python -m d2l_utils bench` in the tiny profile: the three ways run and are measured alike."""

import contextlib
import io
import json

import pytest
import torch

from d2l_utils.bench import WAYS, BenchArguments, peak_flops
from d2l_utils.cli import main


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the bench once for the module and parse the last stdout line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["bench", "--tiny", "--task", "sst2", "--method", "lora", "--steps", "3",
                     "--batch-size", "4"])
    assert code == 0
    lines = out.getvalue().strip().splitlines()
    assert lines[-1].startswith("{")
    assert any(line.startswith("fixed padding") for line in lines)  # the table
    return json.loads(lines[-1])


def test_three_ways_with_positive_rates(report):
    assert {"model", "task", "method", "steps", "batch_size", "device"} <= set(report)
    assert (report["task"], report["method"], report["steps"]) == ("sst2", "lora", 3)
    for name in WAYS:
        way = report[name]
        assert way["examples_per_s"] > 0 and way["tokens_per_s"] > 0 and way["wall_s"] > 0
        assert way["peak_memory_mb"] > 0
        assert way["examples"] == 3 * 4  # the timed steps only, not the warm-up
        assert way["examples_per_s"] == pytest.approx(way["examples"] / way["wall_s"], rel=1e-3)
        assert way["tokens_per_s"] == pytest.approx(way["tokens"] / way["wall_s"], rel=1e-3)


def test_ratios_are_quotients_of_examples_per_second(report):
    library = report["library_loop"]["examples_per_s"]
    assert report["ratio_vs_fixed_padding"] == pytest.approx(
        library / report["fixed_padding"]["examples_per_s"], rel=1e-3)
    assert report["ratio_vs_hf_trainer"] == pytest.approx(
        library / report["hf_trainer"]["examples_per_s"], rel=1e-3)


def test_fixed_padding_counts_only_real_tokens(report):
    fixed = report["fixed_padding"]
    assert fixed["padded_tokens"] == fixed["examples"] * 128  # every example padded to 128
    assert 0 < fixed["tokens"] < fixed["padded_tokens"]  # the fixtures are short sentences
    assert fixed["tokens"] / fixed["examples"] < 64
    for name in ("hf_trainer", "library_loop"):  # dynamic padding pads far less
        assert report[name]["padding_share"] < fixed["padding_share"]


def test_options_and_peak_lookup(capsys):
    assert main(["bench", "--tiny", "--task", "sst2", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
    assert BenchArguments(task="cola", tiny=True).run_arguments().max_steps == 33
    assert peak_flops(torch.device("cpu"), None) is None
    assert peak_flops(torch.device("cpu"), 100.0) == 100e12


def test_untimed_steps_are_not_learning_rate_warmup():
    """The bench's untimed steps change what is timed, never the job's learning-rate schedule."""
    args = BenchArguments(task="sst2", tiny=True, untimed_steps=7, steps=5)
    job = args.run_arguments()
    assert job.max_steps == 12
    assert job.warmup_steps is None and job.num_warmup_steps(12) == round(0.1 * 12)
