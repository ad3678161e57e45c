"""Precision per GPU: decided by compute capability, never by torch's emulation-aware bf16 query."""

from __future__ import annotations

import pytest
import torch

from d2l_utils.precision import (
    PrecisionError,
    fastnlp_precision,
    hf_precision_kwargs,
    resolve_precision,
)

T4 = ("Tesla T4", (7, 5))
V100 = ("Tesla V100-SXM2-16GB", (7, 0))
A100 = ("NVIDIA A100-SXM4-40GB", (8, 0))
H100 = ("NVIDIA H100 80GB HBM3", (9, 0))


@pytest.fixture
def machine(monkeypatch):
    """Make torch see a GPU (name, capability), or no GPU with None (a CPU without native bf16
    unless `native_cpu_bf16`)."""
    def use(gpu, native_cpu_bf16=False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: native_cpu_bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: gpu is not None)
        if gpu is None:
            def no_gpu(*args, **kwargs):
                raise AssertionError("queried a GPU on a machine without one")
            for query in ("get_device_capability", "get_device_name", "is_bf16_supported"):
                monkeypatch.setattr(torch.cuda, query, no_gpu)
            return
        name, capability = gpu
        monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: capability)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda device=None: name)
        # what torch >= 2.3 really answers on a T4: True, because it counts emulation
        monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    return use


@pytest.mark.parametrize("gpu, expected", [(T4, "fp16"), (V100, "fp16"), (A100, "bf16"),
                                           (H100, "bf16"), (None, "no")],
                         ids=["T4", "V100", "A100", "H100", "CPU"])
def test_auto_follows_compute_capability(machine, gpu, expected):
    machine(gpu)
    assert resolve_precision("auto") == expected
    assert resolve_precision() == expected


def test_auto_on_t4_ignores_emulated_bf16(machine):
    machine(T4)
    assert torch.cuda.is_bf16_supported()  # the trap: emulation counts as support
    assert resolve_precision("auto") == "fp16"
    assert hf_precision_kwargs("auto") == {"fp16": True, "bf16": False}


@pytest.mark.parametrize("gpu", [T4, V100, A100, H100, None],
                         ids=["T4", "V100", "A100", "H100", "CPU"])
def test_no_is_fp32_everywhere(machine, gpu):
    machine(gpu)
    assert resolve_precision("no") == "no"
    assert hf_precision_kwargs("no") == {"fp16": False, "bf16": False}


def test_explicit_choices_that_the_gpu_runs(machine):
    machine(T4)
    assert resolve_precision("fp16") == "fp16"
    machine(A100)
    assert resolve_precision("fp16") == "fp16"
    assert resolve_precision("bf16") == "bf16"
    assert hf_precision_kwargs("bf16") == {"fp16": False, "bf16": True}


@pytest.mark.parametrize("gpu", [T4, V100], ids=["T4", "V100"])
def test_bf16_below_ampere_is_an_error_naming_the_gpu(machine, gpu):
    machine(gpu)
    with pytest.raises(PrecisionError) as error:
        resolve_precision("bf16")
    assert isinstance(error.value, ValueError)
    message = str(error.value)
    assert gpu[0] in message and "fp16" in message and f"{gpu[1][0]}.{gpu[1][1]}" in message
    with pytest.raises(PrecisionError):
        hf_precision_kwargs("bf16")


@pytest.mark.parametrize("choice", ["fp16", "bf16"])
def test_half_precision_on_cpu_is_an_error(machine, choice):
    machine(None)
    with pytest.raises(PrecisionError, match="GPU"):
        resolve_precision(choice)
    with pytest.raises(PrecisionError):
        fastnlp_precision(choice)


def test_bf16_on_a_cpu_with_native_bf16(machine, tmp_path):
    from transformers import TrainingArguments

    machine(None, native_cpu_bf16=True)
    assert resolve_precision("bf16") == "bf16"
    kwargs = hf_precision_kwargs("bf16")
    assert kwargs == {"fp16": False, "bf16": True, "use_cpu": True}
    # the Trainer takes them (without use_cpu it raises "Your setup doesn't support bf16/gpu")
    assert TrainingArguments(output_dir=str(tmp_path), report_to=[], **kwargs).bf16
    assert resolve_precision("auto") == "no"  # auto stays fp32: the same numbers everywhere
    with pytest.raises(PrecisionError, match="GPU"):
        resolve_precision("fp16")
    with pytest.raises(PrecisionError, match="fp16 only"):
        fastnlp_precision("bf16")  # fastNLP has no bf16, and fp16 needs a GPU


def test_unknown_choice(machine):
    machine(T4)
    with pytest.raises(PrecisionError, match="auto, no, fp16, bf16"):
        resolve_precision("fp8")


def test_hf_kwargs_for_auto(machine):
    machine(H100)
    assert hf_precision_kwargs("auto") == {"fp16": False, "bf16": True}
    machine(None)
    assert hf_precision_kwargs("auto") == {"fp16": False, "bf16": False}


@pytest.mark.parametrize("gpu", [T4, V100, A100, H100], ids=["T4", "V100", "A100", "H100"])
def test_fastnlp_gets_fp16_on_any_gpu(machine, gpu):
    machine(gpu)
    fp16, note = fastnlp_precision("auto")
    assert fp16 is True
    assert note.startswith("fastNLP 1.0.1 supports fp16 only: fp16") and gpu[0] in note


def test_fastnlp_notes(machine):
    machine(None)
    assert fastnlp_precision("auto") == (False, "fp32 on CPU")
    machine(A100)
    fp16, note = fastnlp_precision("bf16")
    assert fp16 and "instead of bf16" in note
    fp16, note = fastnlp_precision("no")
    assert not fp16 and note.startswith("fp32")
    machine(T4)
    with pytest.raises(PrecisionError):
        fastnlp_precision("bf16")  # checked like everywhere else, not quietly turned into fp16


def test_the_loops_fp16_scales_gradients_and_checkpoints_the_scaler(tmp_path, monkeypatch):
    """The loop's own fp16 (autocast and a gradient scaler; on the CPU here, a GPU for real):
    finite losses, the scaler's state in every checkpoint, and the model's own forward back after
    the run (the autocast wraps it only while the loop trains)."""
    import math

    from d2l_utils.arguments import RunArguments
    from d2l_utils.training import loop, prepare_run
    from d2l_utils.training.checkpoints import latest_checkpoint

    monkeypatch.setattr(loop, "resolve_precision", lambda choice: "fp16")
    run = prepare_run(RunArguments(task="sst2", method="lora", tiny=True, max_steps=4,
                                   save_every_steps=2, log_every=1, progress=False,
                                   output_dir=str(tmp_path)))
    result = loop.train_with_loop(run)
    assert result.mixed_precision == "fp16"
    assert all(math.isfinite(loss) for _, loss in result.loss_log)
    assert (latest_checkpoint(tmp_path) / "scaler.pt").is_file()
    assert "forward" not in vars(run.model)


LOOP_RUNS = """
import json, sys, tempfile
import d2l_utils.precision
from d2l_utils.arguments import RunArguments
from d2l_utils.training import train

d2l_utils.precision.cpu_has_native_bf16 = lambda: True
if sys.argv[1] != "fresh":
    from accelerate import Accelerator

    Accelerator(mixed_precision=sys.argv[1])  # as an earlier Trainer run leaves it
print(json.dumps([train(RunArguments(
    task="sst2", tiny=True, method="lora", seed=3, max_steps=3, log_every=1, progress=False,
    save_model=False, mixed_precision=p, output_dir=tempfile.mkdtemp()), verbose=False)["loss_log"]
    for p in ("no", "bf16", "no")]))
"""


def test_the_loops_precision_does_not_depend_on_accelerates_process_state():
    """accelerate fixes one mixed precision per process (an earlier Trainer or loop run sets
    it); the loop's own autocast does not depend on it: fp32, bf16 and fp32 again in one process
    where accelerate was set to bf16 give the losses of a fresh process, and bf16 differs."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    processes = [subprocess.Popen([sys.executable, "-c", LOOP_RUNS, state], env=env, text=True,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
                 for state in ("fresh", "bf16")]  # side by side: two processes, two cores
    outputs = [process.communicate(timeout=300) for process in processes]
    for process, (_, err) in zip(processes, outputs):
        assert process.returncode == 0, err[-3000:]
    fresh, after_bf16 = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert after_bf16 == fresh
    assert fresh[0] == fresh[2] != fresh[1]
