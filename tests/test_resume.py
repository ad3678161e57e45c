"""Interruption-proof training: kill -9 and Ctrl-C mid-run, resume, and get the same result."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file

from d2l_utils.cli import main
from d2l_utils.profiles import PAUSE_ENV
from d2l_utils.training.checkpoints import latest_checkpoint, list_checkpoints

REPO = Path(__file__).resolve().parents[1]
# The tiny model: the pause marker (PAUSE_ENV) makes a signal land at a chosen step, however
# fast the steps are.
RUN = ["-m", "d2l_utils", "train", "--tiny", "--task", "sst2", "--method", "lora", "--epochs",
       "3", "--save-every-steps", "2", "--keep-checkpoints", "2", "--log-every", "2",
       "--no-progress"]


# 56 tiny SST-2 examples, batch 8 (the tiny default): 7 steps an epoch, 21 in all; a checkpoint
# every 2 steps.


def start(output_dir: Path, *extra: str, pause_at: int | None = None) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    env.pop(PAUSE_ENV, None)
    if pause_at is not None:  # the run prints a marker after this step and waits for a signal
        env[PAUSE_ENV] = str(pause_at)
    return subprocess.Popen([sys.executable, *RUN, "--output-dir", str(output_dir), *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_pause(proc: subprocess.Popen, step: int) -> None:
    """Read the run's output up to its marker line: it is now waiting at `step`, so a signal
    sent now lands at that step, whatever the machine's speed."""
    for line in proc.stdout:
        if line.strip() == f"paused at step {step}":
            return
    pytest.fail(f"run ended before step {step}: {proc.stderr.read()[-3000:]}")


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return out


def assert_same_result(a: Path, b: Path) -> None:
    wa = load_file(str(a / "trainable_weights.safetensors"))
    wb = load_file(str(b / "trainable_weights.safetensors"))
    assert wa.keys() == wb.keys()
    for name in wa:
        assert (wa[name] - wb[name]).abs().max().item() <= 1e-6, name
    ra = json.loads((a / "record.json").read_text())
    rb = json.loads((b / "record.json").read_text())
    assert ra["metrics"] == rb["metrics"]
    assert ra["history"] == rb["history"]
    assert ra["loss_log"] == rb["loss_log"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("uninterrupted")
    finish(start(out))
    return out


def test_sigkill_then_resume_equals_uninterrupted_run(tmp_path, uninterrupted):
    out = tmp_path / "killed"
    step = 7  # between the checkpoints of steps 6 and 8: the resumed run repeats step 7
    proc = start(out, pause_at=step)
    wait_for_pause(proc, step)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "record.json").exists()
    killed_at = list_checkpoints(out)
    assert killed_at and len(killed_at) <= 2  # only the last K are kept
    resumed = finish(start(out, "--resume"))
    assert "resuming from" in resumed
    assert_same_result(out, uninterrupted)
    record = json.loads((out / "record.json").read_text())
    assert record["resumed_from"] is not None


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tmp_path, uninterrupted):
    out = tmp_path / "interrupted"
    proc = start(out, pause_at=5)
    wait_for_pause(proc, 5)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    assert "--resume" in err and "checkpoint saved" in err
    assert latest_checkpoint(out).name == "step-00000005"  # saved at the step it was stopped
    finish(start(out, "--resume"))
    assert_same_result(out, uninterrupted)


def test_half_written_checkpoints_are_ignored(tmp_path):
    root = tmp_path / "checkpoints"
    (root / "step-00000004").mkdir(parents=True)
    (root / "step-00000004" / "state.json").write_text("{}")
    (root / ".tmp-step-00000006-123").mkdir()  # a write that was killed
    (root / "step-00000008").mkdir()  # no state.json: incomplete
    assert latest_checkpoint(tmp_path).name == "step-00000004"


def test_resume_refuses_changed_options(tmp_path, capsys):
    out = str(tmp_path)
    args = ["train", "--tiny", "--task", "sst2", "--method", "lora", "--max-steps", "4",
            "--save-every-steps", "2", "--output-dir", out, "--no-progress"]
    assert main(args) == 0
    assert main([*args, "--resume", "--lr", "0.5"]) == 1
    assert "options differ" in capsys.readouterr().err


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path, capsys):
    code = main(["train", "--tiny", "--task", "sst2", "--method", "full", "--lr", "1e12",
                 "--max-grad-norm", "0", "--log-every", "1", "--save-every-steps", "2",
                 "--output-dir", str(tmp_path), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert "at step" in err and "learning rate" in err
    good = latest_checkpoint(tmp_path)
    assert good is not None and str(good) in err


def test_same_command_same_record_metrics(tmp_path):
    runs = []
    for name in ("a", "b"):
        assert main(["train", "--tiny", "--task", "cola", "--method", "bitfit", "--seed", "7",
                     "--output-dir", str(tmp_path / name), "--no-progress"]) == 0
        runs.append(json.loads((tmp_path / name / "record.json").read_text()))
    assert runs[0]["metrics"] == runs[1]["metrics"]
    assert runs[0]["loss_log"] == runs[1]["loss_log"]


@pytest.mark.parametrize("change, same_run", [
    ({"progress": False}, True), ({"output_dir": "moved"}, True),
    ({"keep_checkpoints": 5}, True), ({"lr": 0.5}, False), ({"seed": 7}, False),
])
def test_resume_and_rerun_agree_on_what_is_the_same_run(tmp_path, change, same_run):
    """One set of options that do not change what a run computes: a checkpoint resumes under
    exactly the changes that let a rerun replace the finished run (a moved folder used to be
    refused on resume and accepted on rerun)."""
    from dataclasses import asdict, replace

    from d2l_utils.arguments import RunArguments
    from d2l_utils.training.checkpoints import ResumeError, check_resumable
    from d2l_utils.training.prepare import RunFolderError, check_run_folder

    saved = RunArguments(task="sst2", tiny=True, output_dir=str(tmp_path / "run")).resolved()
    current = replace(saved, **change)
    checkpoint, finished = tmp_path / "checkpoint", tmp_path / "finished"
    checkpoint.mkdir()
    finished.mkdir()
    (checkpoint / "run_args.json").write_text(json.dumps(asdict(saved)))
    (finished / "record.json").write_text(json.dumps({"args": asdict(saved)}))
    verdicts = []
    for check, error in [(lambda: check_resumable(checkpoint, asdict(current)), ResumeError),
                         (lambda: check_run_folder(finished, current, say=str), RunFolderError)]:
        try:
            check()
            verdicts.append(True)
        except error as err:
            assert "--" + next(iter(change)).replace("_", "-") in str(err)
            verdicts.append(False)
    assert verdicts == [same_run, same_run]
