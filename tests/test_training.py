"""End-to-end runs of `train` / `evaluate` on the fixtures (the run_glue habit: a tiny fixture,
a few steps, the real code path)."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from d2l_utils.arguments import EvaluateArguments, RunArguments
from d2l_utils.cli import main
from d2l_utils.methods import METHODS
from d2l_utils.training import train
from d2l_utils.training.clipping import clipping_note
from d2l_utils.training.evaluate import evaluate_checkpoint

REPO = Path(__file__).resolve().parents[1]
RECORD_KEYS = {"task", "method", "model", "metrics", "params", "wall_time_s",
               "train_examples_per_s", "train_tokens_per_s", "peak_memory_mb", "device",
               "versions", "seed", "command", "history", "loss_log", "profile"}


def tiny_run(tmp_path, **options) -> dict:
    defaults = {"task": "sst2", "tiny": True, "progress": False, "output_dir": str(tmp_path)}
    return train(RunArguments(**{**defaults, **options}))


@pytest.mark.parametrize("method,options", [
    ("full", {}), ("freeze", {"trainable_layers": 1}), ("bitfit", {}),
    ("lora", {"backend": "peft"}), ("lora", {"backend": "adapters"}),
    ("prefix", {"backend": "adapters"}), ("prefix", {"backend": "peft"}),
    ("ptuning-v2", {}), ("prompt-tuning", {}),
])
def test_every_method_trains_in_the_tiny_profile(tmp_path, method, options):
    record = tiny_run(tmp_path, task="mnli", method=method, **options)
    assert RECORD_KEYS <= set(record)
    assert set(record["metrics"]) == {"validation_matched", "validation_mismatched"}
    for split in record["metrics"].values():
        assert 0.0 <= split["accuracy"] <= 1.0
    assert record["params"]["trainable"] < record["params"]["total"] or method == "full"
    on_disk = json.loads((tmp_path / "record.json").read_text())
    assert on_disk["metrics"] == record["metrics"]
    assert (tmp_path / "trainable_weights.safetensors").is_file()


def test_methods_table_is_covered():
    assert set(METHODS) == {"full", "freeze", "bitfit", "lora", "prefix", "ptuning-v2",
                            "prompt-tuning"}


def test_regression_task_and_evaluate_reproduces_the_record(tmp_path):
    record = tiny_run(tmp_path, task="stsb", method="lora")
    assert set(record["metrics"]["validation"]) == {"pearson", "spearmanr", "loss"}
    result = evaluate_checkpoint(EvaluateArguments(checkpoint=str(tmp_path), tiny=True))
    for key in ("pearson", "spearmanr"):
        assert result["metrics"]["validation"][key] == pytest.approx(
            record["metrics"]["validation"][key], abs=1e-5)


def test_hf_trainer_backend_writes_the_same_record(tmp_path):
    record = tiny_run(tmp_path, task="cola", method="bitfit", trainer="hf", log_every=1)
    assert record["trainer"] == "hf"
    assert "matthews_correlation" in record["metrics"]["validation"]
    assert record["steps"] == 8  # 28 examples / batch 8 -> 4 steps x 2 epochs
    assert len(record["history"]) == 2
    # each epoch's mean training loss, as the loop records it (the Trainer logs every step here)
    losses = dict(record["loss_log"])
    for epoch, point in enumerate(record["history"]):
        mean = sum(losses[s] for s in range(4 * epoch + 1, 4 * epoch + 5)) / 4
        assert point["train_loss"] == pytest.approx(mean, abs=1e-5)


@pytest.mark.parametrize("task,trainers", [("cola", ("loop", "hf")),
                                           ("sst2", ("loop", "hf", "fastnlp"))])
def test_every_trainer_keeps_predictions_that_pair_up(tmp_path, task, trainers):
    """Each trainer keeps the final evaluation's per-example predictions in the same example
    order (the loop's, longest first), so that runs of different trainers pair up in a paired
    bootstrap; and the predictions give the recorded metric."""
    from d2l_utils.metrics import compute_metrics
    from d2l_utils.tasks import get_task

    records = [tiny_run(tmp_path / trainer, task=task, method="bitfit", trainer=trainer,
                        save_model=False) for trainer in trainers]
    main = get_task(task).main_metric
    for record in records:
        kept = record["predictions"]["validation"]
        assert kept["labels"] == records[0]["predictions"]["validation"]["labels"]
        metrics = compute_metrics(get_task(task), kept["predictions"], kept["labels"])
        assert metrics[main] == pytest.approx(record["metrics"]["validation"][main], abs=1e-6)
    assert len(set(map(tuple, (r["predictions"]["validation"]["labels"] for r in records)))) == 1


def test_same_seed_same_metrics(tmp_path):
    a = tiny_run(tmp_path / "a", method="lora", seed=3)
    b = tiny_run(tmp_path / "b", method="lora", seed=3)
    assert a["metrics"] == b["metrics"]
    assert a["loss_log"] == b["loss_log"]


@pytest.mark.slow
def test_learning_with_a_pretrained_model(tmp_path):
    """On the learnable SST-2 fixture, pretrained MiniLM gets well above chance (0.5)."""
    record = tiny_run(tmp_path, model="minilm-l6", method="full", epochs=4, lr=5e-5,
                      save_model=False)
    losses = [loss for _, loss in record["loss_log"]]
    assert record["metrics"]["validation"]["accuracy"] >= 0.8
    assert record["history"][-1]["train_loss"] < record["history"][0]["train_loss"]
    assert losses[-1] < losses[0]


def test_train_cli_exit_codes(tmp_path, capsys):
    out = str(tmp_path / "cli")
    assert main(["train", "--tiny", "--task", "rte", "--method", "lora", "--max-steps", "3",
                 "--output-dir", out, "--no-progress"]) == 0
    assert "rte | lora | tiny-bert" in capsys.readouterr().out
    assert json.loads((tmp_path / "cli" / "record.json").read_text())["steps"] == 3
    assert main(["train", "--task", "sst2", "--data-dir", str(tmp_path / "none"),
                 "--output-dir", out]) == 1
    assert "no such directory" in capsys.readouterr().err
    assert main(["train", "--task", "sst2", "--output-dir", out, "--model", "tiny-bert"]) == 1
    err = capsys.readouterr().err
    assert "--data-dir" in err and "--tiny" in err
    assert main(["frobnicate"]) == 2
    assert "choose one of: train, evaluate, predict, export, params" in capsys.readouterr().err


def test_unwritable_output_dir_is_a_clear_error(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    assert main(["train", "--tiny", "--task", "sst2", "--output-dir",
                 str(blocker / "run")]) == 1
    assert "is not writable" in capsys.readouterr().err


def test_two_process_ddp_ranks_agree(tmp_path):
    """`accelerate launch` with two CPU processes (gloo): both ranks end with equal weights."""
    env = {**os.environ, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
           "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
           "--dynamo_backend", "no", "--main_process_port", "29517", "-m", "d2l_utils", "train",
           "--tiny", "--task", "sst2", "--method", "lora", "--no-progress",
           "--output-dir", str(tmp_path)]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["num_processes"] == 2
    digests = record["rank_weight_digests"]
    assert len(digests) == 2 and digests[0] == digests[1]
    assert record["steps"] == 8  # 56 examples, batch 8 per process -> 4 steps per epoch


def test_bf16_on_a_cpu_trains_under_autocast(tmp_path, monkeypatch):
    """An explicit bf16 on a CPU with native bf16 really trains in bfloat16 autocast: the record
    says so, and the losses differ from the fp32 run of the same seed (emulated on CPUs without
    native bf16, which is slow but computes the same)."""
    monkeypatch.setattr("d2l_utils.precision.cpu_has_native_bf16", lambda: True)
    bf16 = tiny_run(tmp_path / "bf16", method="lora", seed=3, mixed_precision="bf16")
    fp32 = tiny_run(tmp_path / "fp32", method="lora", seed=3, mixed_precision="no")
    assert bf16["mixed_precision"] == "bf16" and fp32["mixed_precision"] == "no"
    assert bf16["loss_log"] != fp32["loss_log"]
    assert all(math.isfinite(loss) for _, loss in bf16["loss_log"])


@pytest.mark.parametrize("trainer", ["loop", "hf", "fastnlp"])
def test_eval_every_steps_means_the_same_under_every_trainer(tmp_path, trainer):
    """Evaluations every N steps land in eval_log, the end of every epoch in history with that
    epoch's mean training loss, under all three trainers (the Trainer used to ignore the option
    and evaluate per epoch only)."""
    if trainer == "fastnlp":
        pytest.importorskip("fastNLP")
    record = tiny_run(tmp_path, task="sst2", method="full", trainer=trainer, epochs=2,
                      batch_size=8, eval_every_steps=2, save_model=False)
    steps_per_epoch = record["steps"] / 2
    assert [h["step"] for h in record["history"]] == [steps_per_epoch, record["steps"]]
    assert all(h["train_loss"] > 0 for h in record["history"])
    mid = [e["step"] for e in record["eval_log"]]
    assert mid == [s for s in range(2, record["steps"], 2) if s % steps_per_epoch], mid
    assert all("accuracy" in e["validation"] for e in record["eval_log"])
    # one meaning per trainer for --max-grad-norm, stated in the record
    assert record["gradient_clipping"] == clipping_note(trainer, 1.0)
    assert ("per group" in record["gradient_clipping"]) == (trainer == "loop")


def test_the_record_says_how_gradients_were_clipped():
    assert clipping_note("hf", 0.0) == clipping_note("loop", 0) == "off (--max-grad-norm 0)"
    assert "head (with the pooler) and method" in clipping_note("loop", 1.0)
    assert "global norm 0.5" in clipping_note("fastnlp", 0.5)


@pytest.mark.parametrize("trainer, options, message", [
    ("fastnlp", {"save_every_steps": 2}, "writes no checkpoints"),
    ("fastnlp", {"resume": True}, "writes no checkpoints"),
    ("fastnlp", {"epochs": 1.5}, "whole epochs"),
    ("fastnlp", {"mixed_precision": "bf16"}, "fp16"),
    ("loop", {"train_batches_per_epoch": 2}, "is for --trainer fastnlp"),
    ("hf", {"train_batches_per_epoch": 2}, "is for --trainer fastnlp"),
])
def test_an_option_a_trainer_cannot_honour_is_refused_before_loading(
        tmp_path, capsys, monkeypatch, trainer, options, message):
    """One line, exit code 2, and nothing loaded: the trainer would otherwise ignore it."""
    monkeypatch.setattr("d2l_utils.precision.cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr("d2l_utils.training.run.prepare_run", lambda args: pytest.fail("loaded"))
    flags = [f"--{k.replace('_', '-')}" + ("" if v is True else f"={v}")
             for k, v in options.items()]
    assert main(["train", "--tiny", "--task", "sst2", "--trainer", trainer,
                 "--output-dir", str(tmp_path), *flags]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1, err
