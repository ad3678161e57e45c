"""`python benchmarks/bench.py` in the tiny profile: the four ways run and are measured alike."""

import contextlib
import io
import json

import pytest
import torch

from benchmarks.bench import (
    RUNNERS,
    WAYS,
    BenchArguments,
    StepMeter,
    add_flop_utilization,
    expert_trainer_options,
    format_table,
    group_by_length_share,
    main,
    matmul_flops,
    peak_flops,
    way_precisions,
)
from d2l_utils.flops import datasheet_peak_for


@pytest.fixture(scope="module")
def report() -> dict:
    """Run the bench once for the module and parse the last stdout line."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["--tiny", "--task", "sst2", "--method", "lora", "--steps", "3",
                     "--batch-size", "4"])
    assert code == 0
    lines = out.getvalue().strip().splitlines()
    assert lines[-1].startswith("{")
    assert any(line.startswith("fixed padding") for line in lines)  # the table
    assert any(line.startswith("hf trainer + group_by_length") for line in lines)
    assert any(line.startswith("hf trainer's group_by_length alone:") for line in lines)
    return json.loads(lines[-1])


def test_four_ways_with_positive_rates(report):
    assert WAYS == ("fixed_padding", "hf_trainer", "hf_trainer_grouped", "library_loop")
    assert set(RUNNERS) == set(WAYS)
    assert {"model", "task", "method", "steps", "batch_size", "device"} <= set(report)
    assert (report["task"], report["method"], report["steps"]) == ("sst2", "lora", 3)
    for name in WAYS:
        way = report[name]
        assert way["examples_per_s"] > 0 and way["tokens_per_s"] > 0 and way["wall_s"] > 0
        assert way["peak_memory_mb"] > 0
        assert way["examples"] == 3 * 4  # the timed steps only, not the warm-up
        assert way["skipped_steps"] == 0  # fp32: no gradient scaler
        assert way["examples_per_s"] == pytest.approx(way["examples"] / way["wall_s"], rel=1e-3)
        assert way["tokens_per_s"] == pytest.approx(way["tokens"] / way["wall_s"], rel=1e-3)


def test_ratios_are_quotients_of_examples_per_second(report):
    library = report["library_loop"]["examples_per_s"]
    assert report["ratio_vs_fixed_padding"] == pytest.approx(
        library / report["fixed_padding"]["examples_per_s"], rel=1e-3)
    assert report["ratio_vs_hf_trainer"] == pytest.approx(
        library / report["hf_trainer"]["examples_per_s"], rel=1e-3)
    grouped, trainer = (report[k]["examples_per_s"] for k in ("hf_trainer_grouped", "hf_trainer"))
    assert report["ratio_vs_hf_trainer_grouped"] == pytest.approx(library / grouped, rel=1e-3)
    assert report["hf_group_by_length_speedup"] == pytest.approx(grouped / trainer, rel=1e-3)
    assert report["hf_group_by_length_share"] == group_by_length_share(trainer, grouped, library)


def test_group_by_length_share_of_the_loops_gain():
    # the earlier SST-2 measurement: Trainer 79 ex/s, with group_by_length 166, loop 200
    assert group_by_length_share(79.0, 166.0, 200.0) == pytest.approx(87 / 121, abs=1e-4)
    assert group_by_length_share(80.0, 220.0, 200.0) == 1.1667  # the flag alone is faster
    assert group_by_length_share(80.0, 90.0, 80.0) is None  # no gain to share


def test_the_table_names_the_flags_share():
    way = {"examples_per_s": 1.0, "tokens_per_s": 1.0, "padding_share": 0.1,
           "peak_memory_mb": 1.0, "wall_s": 1.0}
    report = {"task": "sst2", "method": "full", "model": "m", "steps": 3, "batch_size": 4,
              "untimed_steps": 1, "device": "CPU", "peak_flops": None,
              **{name: way for name in WAYS}, "ratio_vs_fixed_padding": 8.0,
              "ratio_vs_hf_trainer": 2.5, "ratio_vs_hf_trainer_grouped": 1.2,
              "hf_group_by_length_speedup": 2.1, "hf_group_by_length_share": 0.73}
    table = format_table(report)
    assert "1.20x hf trainer + group_by_length" in table
    assert "group_by_length alone: 2.10x its defaults, 73% of the library loop's gain" in table


def test_fixed_padding_counts_only_real_tokens(report):
    fixed = report["fixed_padding"]
    assert fixed["padded_tokens"] == fixed["examples"] * 128  # every example padded to 128
    assert 0 < fixed["tokens"] < fixed["padded_tokens"]  # the fixtures are short sentences
    assert fixed["tokens"] / fixed["examples"] < 64
    for name in ("hf_trainer", "hf_trainer_grouped", "library_loop"):  # dynamic padding
        assert report[name]["padding_share"] < fixed["padding_share"]


def test_options_and_peak_lookup(capsys):
    assert main(["--tiny", "--task", "sst2", "--steps", "0"]) == 2
    assert "--steps" in capsys.readouterr().err
    for option, value, message in [("--batch-size", "0", "--batch-size must be at least 1"),
                                   ("--r", "0", "--r must be at least 1"),
                                   ("--max-seq-length", "4", "--max-seq-length must be")]:
        assert main(["--tiny", "--task", "sst2", option, value]) == 2
        assert capsys.readouterr().err.startswith(f"error: {message}")  # train's own checks
    assert BenchArguments(task="cola", tiny=True).run_arguments().max_steps == 33
    assert peak_flops(torch.device("cpu"), None) is None
    assert peak_flops(torch.device("cpu"), 100.0) == 100e12


@pytest.mark.parametrize("options,message", [
    ("--batch-size 0", "--batch-size must be at least 1, got 0"),
    ("--max-seq-length 600", "--max-seq-length must be between 8 and 512, got 600"),
    ("--steps 0", "--steps must be at least 1, got 0"),
    ("--untimed-steps -1", "--untimed-steps must be at least 0, got -1"),
    ("--threads -1", "--threads must be at least 1, got -1"),
    ("--peak-tflops 0", "--peak-tflops must be greater than 0, got 0"),
    ("--method full --backend peft", "--backend peft is not available for full"),
    ("--method lora --backend adapters --target-modules dense",
     "--target-modules ['dense'] not supported by the adapters backend"),
])
def test_a_bad_bench_option_is_one_line_before_data_and_model_load(capsys, monkeypatch,
                                                                   options, message):
    """Every bench option is checked as `train` checks it, and before anything loads."""
    import benchmarks.bench as bench_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("data and model were loaded before the options were checked")

    monkeypatch.setattr(bench_module, "prepare_run", must_not_load)
    assert main(["--tiny", "--task", "sst2", *options.split()]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {message}") and err.strip().count("\n") == 0, err


def test_bench_options_are_checked_from_python_too():
    """With `train`'s own checks: the same error class (`OptionError`) and words."""
    from d2l_utils.arguments import OptionError

    with pytest.raises(OptionError, match=r"^--batch-size must be at least 1, got 0$"):
        BenchArguments(task="sst2", tiny=True, batch_size=0)
    with pytest.raises(OptionError, match=r"--batch-size must be an integer at least 1, got '8'"):
        BenchArguments(task="sst2", tiny=True, batch_size="8")
    with pytest.raises(OptionError, match=r"--data-dir and --tiny cannot be used together"):
        BenchArguments(task="sst2", tiny=True, data_dir="glue")


def test_untimed_steps_are_not_learning_rate_warmup():
    """The bench's untimed steps change what is timed, never the job's learning-rate schedule."""
    args = BenchArguments(task="sst2", tiny=True, untimed_steps=7, steps=5)
    job = args.run_arguments()
    assert job.max_steps == 12
    assert job.warmup_steps is None and job.num_warmup_steps(12) == round(0.1 * 12)


def test_each_way_names_its_precision(report):
    """On a CPU every way trains in fp32: the expert Trainer's 16 bits are for GPUs."""
    assert report["mixed_precision"] == "auto"
    assert {report[name]["precision"] for name in WAYS} == {"no"}
    assert way_precisions("auto") == dict.fromkeys(WAYS, "no")


def test_the_expert_trainer_sets_grouping_fused_adamw_and_the_precision():
    assert expert_trainer_options("auto") == {"group_by_length": True,
                                              "optim": "adamw_torch_fused",
                                              "fp16": False, "bf16": False}  # a CPU: fp32


def test_a_precision_this_machine_cannot_run_is_one_error_line(capsys):
    assert main(["--tiny", "--task", "sst2", "--mixed-precision", "fp16"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: fp16 needs a CUDA GPU")


def test_datasheet_peaks_by_gpu_name():
    assert datasheet_peak_for("NVIDIA A10") == 125e12
    assert datasheet_peak_for("NVIDIA A100-SXM4-80GB") == 312e12  # A10 does not match A100
    assert datasheet_peak_for("NVIDIA H100 PCIe") == 756e12
    assert datasheet_peak_for("Tesla T4") == 65e12
    assert datasheet_peak_for("NVIDIA GeForce RTX 4090") is None


def test_flop_utilization_with_the_methods_factor():
    ways = {"a": {"tokens_per_s": 1000.0}}
    add_flop_utilization(ways, 1_000_000, 1e12)  # 6N by convention
    add_flop_utilization(ways, 1_000_000, 1e12, flops_per_param=4.0, key="mfu4")
    assert ways["a"]["mfu"] == 0.006 and ways["a"]["mfu4"] == 0.004
    add_flop_utilization(ways, 1_000_000, None, key="none")  # no peak, no MFU
    assert "none" not in ways["a"]


def test_matmul_flops_runs_on_a_cpu_too():
    assert matmul_flops(torch.device("cpu"), torch.float32, size=64, repeats=2) > 0


class _Overflowing(torch.nn.Module):
    """A loss so large that any gradient scale turns its gradient into inf."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return (self.w * 1e30 * input_ids.float()).sum()


def test_steps_the_fp16_gradient_scaler_skips_still_count():
    """fp16's scaler skips `optimizer.step` on inf gradients (often in the first steps); the
    meter counts those steps anyway (and says so), or the timed window would never end."""
    original = torch.amp.GradScaler.step
    model = _Overflowing().train()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**100)
    batch = {"input_ids": torch.ones(2, 3, dtype=torch.long),
             "attention_mask": torch.ones(2, 3, dtype=torch.long)}
    with StepMeter(model, 1, 2, torch.device("cpu")) as meter:
        for _ in range(3):
            scaler.scale(model(**batch)).backward()
            scaler.step(optimizer)
            scaler.update()
            optimizer.zero_grad()
    result = meter.result()
    assert result["examples"] == 4 and result["skipped_steps"] == 2  # the timed ones
    assert torch.amp.GradScaler.step is original  # restored
