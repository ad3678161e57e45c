"""Every bad value, file and interruption a hostile-but-realistic user tries gets one clear line
and the right exit code (2 a bad option, 1 a bad file or folder, 130 Ctrl-C), never a traceback,
a silent wrong result or lost work. Tiny model, fixtures, seconds each. Interruptions are sent
at a known point (the `D2L_PAUSE_AT_STEP` marker line), never after a sleep."""

import dataclasses
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from d2l_utils.arguments import EvaluateArguments, OptionError, RunArguments, runs_root
from d2l_utils.cli import main
from d2l_utils.fixtures import write_fixtures
from d2l_utils.metrics import MetricError, compute_metrics
from d2l_utils.profiles import PAUSE_ENV
from d2l_utils.tasks import get_task
from d2l_utils.training.checkpoints import list_checkpoints, save_checkpoint
from d2l_utils.training.prepare import folder_lock

REPO = Path(__file__).resolve().parents[1]
TINY = ["--tiny", "--no-progress", "--max-train-samples", "64"]


def run_main(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    return code, out, err


def train(capsys, output_dir, *extra: str, task: str = "sst2") -> tuple[int, str, str]:
    return run_main(capsys, "train", "--task", task, *TINY, "--output-dir", str(output_dir),
                    *extra)


# ---------------------------------------------------------------------------------------------
# Options: exit 2, one line naming the option, the value and the valid range


@pytest.mark.parametrize("options,message", [
    (["--epochs", "0"], "--epochs must be greater than 0, got 0"),
    (["--epochs", "-1"], "--epochs must be greater than 0, got -1"),
    (["--max-steps", "-1"], "--max-steps must be at least 1, got -1"),
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--eval-batch-size", "0"], "--eval-batch-size must be at least 1, got 0"),
    (["--max-seq-length", "2"], "--max-seq-length must be at least 8, got 2"),
    (["--max-seq-length", "513"], "--max-seq-length must be between 8 and 512, got 513 "
                                  "(tiny-bert has 512 positions)"),
    (["--method", "prompt-tuning", "--max-seq-length", "512"],
     "between 8 and 492, got 512 (tiny-bert has 512 positions minus the 20 prompt"),
    (["--method", "freeze", "--trainable-layers", "3"],
     "--trainable-layers must be between 0 and 2, got 3 (tiny-bert has only 2 encoder"),
    (["--lr", "-1"], "--lr must be greater than 0, got -1"),
    (["--lr", "nan"], "--lr must be a finite number greater than 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number greater than 0, got inf"),
    (["--warmup-ratio", "1.5"], "--warmup-ratio must be between 0 and 1, got 1.5"),
    (["--warmup-steps", "-2"], "--warmup-steps must be at least 0, got -2"),
    (["--seed", "-1"], "--seed must be between 0 and 4294967295, got -1"),
    (["--max-train-samples", "0"], "--max-train-samples must be at least 1, got 0"),
    (["--max-eval-samples", "0"], "--max-eval-samples must be at least 1, got 0"),
    (["--keep-checkpoints", "0"], "--keep-checkpoints must be at least 1, got 0"),
    (["--dropout", "1"], "--dropout must be at least 0 and less than 1, got 1"),
    (["--output-dir", ""], "--output-dir must not be empty, got ''"),
    (["--data-dir", "glue"], "--data-dir and --tiny cannot be used together"),
    (["--resume", "--overwrite"], "--resume and --overwrite cannot be used together"),
    (["--trainer", "fastnlp", "--task", "stsb"], "--trainer fastnlp reports accuracy"),
    (["--method", "full", "--backend", "peft"], "--backend peft is not available for full"),
    (["--method", "lora", "--backend", "adapters", "--target-modules", "dense"],
     "--target-modules ['dense'] not supported by the adapters backend"),
    (["--method", "lora", "--backend", "adapters", "--pooler", "train"],
     "--pooler: the adapters backend's head reads the [CLS] vector"),
    (["--method", "ptuning-v2", "--model", "distilbert-base-uncased", "--random-init"],
     "--method ptuning-v2 with peft needs attention that accepts past key/values"),
])
def test_a_bad_option_value_is_one_line_and_exit_2(tmp_path, capsys, options, message):
    code, _, err = train(capsys, tmp_path / "run", *options)
    assert code == 2
    assert message in err
    assert err.strip().count("\n") == 0  # one line
    assert not (tmp_path / "run").exists()  # refused before anything was created


@pytest.mark.parametrize("options,message", [
    (["--learning-rate", "1e-4"], "unrecognized arguments: --learning-rate 1e-4 "
                                  "(did you mean --lr?)"),
    (["--num-train-epochs", "3"], "(did you mean --epochs?)"),
    (["--bach-size", "8"], "(did you mean --batch-size?)"),
    (["--epochs", "three"], "argument --epochs: invalid float value: 'three'"),
    (["--max-steps", "1.5"], "argument --max-steps: invalid int value: '1.5'"),
    (["--method", "adapter"], "argument --method: invalid choice: 'adapter'"),
])
def test_argparse_errors_print_the_usage_line_and_exit_2(tmp_path, capsys, options, message):
    with pytest.raises(SystemExit) as info:  # argparse's own exit, as from the shell
        main(["train", "--task", "sst2", *TINY, "--output-dir", str(tmp_path), *options])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("usage: python -m d2l_utils train")
    assert message in err


def test_every_numeric_option_has_a_range_shown_in_help(capsys):
    """The checks come from the fields' metadata: a new numeric option cannot lack one."""
    from benchmarks.bench import BenchArguments
    from d2l_utils.arguments import PredictArguments

    for cls in (RunArguments, EvaluateArguments, PredictArguments, BenchArguments):
        for f in dataclasses.fields(cls):
            if any(t in str(f.type) for t in ("int", "float")):
                assert "bounds" in f.metadata, f"{cls.__name__}.{f.name} has no range"
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    assert "stop after this many optimizer steps [at least 1]" in capsys.readouterr().out


def test_option_spellings_parse_as_before(capsys):
    """`--max_steps` (transformers' spelling), `--no-progress`, `--tiny false`, `--tiny` alone:
    the forms the options took with HfArgumentParser, from a plain argparse parser."""
    from d2l_utils.cli import parse

    args = parse(RunArguments, ["--task=sst2", "--max_steps", "5", "--no-progress", "--tiny",
                                "--group-by-length", "false", "--batch_size=4", "--max-st",
                                "6", "--target-modules", "query", "key"], "train")
    assert (args.max_steps, args.progress, args.tiny, args.group_by_length) == (6, False, True,
                                                                                 False)
    assert (args.batch_size, args.target_modules) == (4, ["query", "key"])
    assert args.r == 8 and args.output_dir is None  # the dataclass defaults
    with pytest.raises(SystemExit):
        parse(RunArguments, ["--help"], "train")
    out = capsys.readouterr().out
    assert "--max-steps MAX_STEPS" in out and "--max_steps" not in out
    assert "--no-progress" in out and "the same as --progress false" in out
    assert "lora: rank [at least 1] (default: 8)" in out and "(default: None)" not in out


def test_options_are_checked_from_python_too():
    with pytest.raises(OptionError, match=r"--epochs must be greater than 0, got 0"):
        RunArguments(task="sst2", tiny=True, epochs=0)
    with pytest.raises(OptionError, match=r"--batch-size must be an integer at least 1, got '8'"):
        RunArguments(task="sst2", tiny=True, batch_size="8")
    with pytest.raises(OptionError, match=r"--seed must be an integer .*, got True"):
        RunArguments(task="sst2", seed=True)


@pytest.mark.parametrize("options,message", [
    (["--batch-size", "0"], "--batch-size must be at least 1, got 0"),
    (["--data-dir", "glue", "--tiny"], "--data-dir and --tiny cannot be used together"),
    (["--max-eval-samples", "-5"], "--max-eval-samples must be at least 1, got -5"),
])
def test_evaluate_options(tmp_path, capsys, options, message):
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", str(tmp_path), *options)
    assert code == 2 and message in err


def test_the_default_output_folder_follows_d2l_output_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("D2L_OUTPUT_DIR", str(tmp_path / "fresh"))
    args = RunArguments(task="sst2", method="lora", tiny=True).resolved()
    assert args.output_dir == f"{tmp_path}/fresh/sst2-lora-tiny-bert"
    monkeypatch.delenv("D2L_OUTPUT_DIR")
    assert runs_root() == "runs"


# ---------------------------------------------------------------------------------------------
# Data values: file:line, exit 1, before any training


@pytest.fixture
def stsb_dir(tmp_path) -> Path:
    return write_fixtures(tmp_path / "glue", ["stsb"])


def _set_score(path: Path, line: int, score: str) -> None:
    lines = path.read_text().splitlines()
    lines[line - 1] = "\t".join(lines[line - 1].split("\t")[:-1] + [score])
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("split,score,problem", [
    ("train", "9.5", "score '9.5' is outside stsb's range 0 to 5"),
    ("train", "-3", "score '-3' is outside stsb's range 0 to 5"),
    ("train", "nan", "score 'nan' is not a finite number"),
    ("train", "inf", "score 'inf' is not a finite number"),
    ("dev", "nan", "score 'nan' is not a finite number"),
    ("dev", "-inf", "score '-inf' is not a finite number"),
])
def test_a_bad_stsb_score_names_file_and_line(tmp_path, capsys, stsb_dir, split, score,
                                              problem):
    _set_score(stsb_dir / "STS-B" / f"{split}.tsv", 3, score)
    code, _, err = run_main(capsys, "train", "--task", "stsb", "--data-dir", str(stsb_dir),
                            "--model", "tiny-bert", "--no-progress", "--output-dir",
                            str(tmp_path / "run"))
    assert code == 1
    assert f"STS-B/{split}.tsv:3: {problem}" in err
    assert not (tmp_path / "run" / "record.json").exists()


def test_non_finite_metric_inputs_are_errors_never_zero():
    stsb = get_task("stsb")
    labels = np.array([0.5, 1.0, 2.0, 4.0])
    with pytest.raises(MetricError, match=r"1 of 4 labels are not finite"):
        compute_metrics(stsb, labels, np.array([0.5, np.nan, 2.0, 4.0]))
    with pytest.raises(MetricError, match=r"predictions are not finite.*diverged"):
        compute_metrics(stsb, np.array([np.inf, 1.0, 2.0, 3.0]), labels)



def test_an_undefined_correlation_is_reported_as_undefined_never_zero():
    stsb = get_task("stsb")
    labels = np.array([0.5, 1.0, 2.0, 4.0])
    out = compute_metrics(stsb, np.full(4, 2.5), labels)
    assert out["pearson"] is None and out["spearmanr"] is None
    assert out["undefined"]["pearson"] == ("the predictions are constant (2.5): a correlation "
                                           "needs variation")
    out = compute_metrics(stsb, labels, np.full(4, 3.0))
    assert out["undefined"]["spearmanr"].startswith("the labels are constant (3)")
    # the usual conventions stay: MCC of constant predictions and F1 without a positive are 0
    assert compute_metrics(get_task("cola"), np.ones(4), np.array([0, 1, 1, 0])) == {
        "matthews_correlation": 0.0}
    assert compute_metrics(get_task("mrpc"), np.zeros(4), np.array([0, 1, 1, 0]))["f1"] == 0.0


def _set_dev_rows(path: Path, keep: int, score: str | None = None) -> None:
    lines = path.read_text().splitlines()
    rows = lines[1:keep + 1]
    if score is not None:
        rows = ["\t".join(r.split("\t")[:-1] + [score]) for r in rows]
    path.write_text("\n".join([lines[0], *rows]) + "\n")


def test_an_stsb_dev_set_of_one_pair_is_refused_before_training(tmp_path, capsys, stsb_dir):
    _set_dev_rows(stsb_dir / "STS-B" / "dev.tsv", 1)
    code, stdout, err = run_main(capsys, "train", "--task", "stsb", "--data-dir", str(stsb_dir),
                                 "--model", "tiny-bert", "--no-progress",
                                 "--output-dir", str(tmp_path / "run"))
    assert code == 1
    assert "error: stsb: the validation split has 1 example(s); stsb's pearson needs at least " \
           "2" in err
    assert "step" not in stdout and not (tmp_path / "run" / "record.json").exists()


def test_max_eval_samples_below_the_metrics_minimum_is_refused(tmp_path, capsys):
    code, _, err = train(capsys, tmp_path / "run", "--max-eval-samples", "1", task="stsb")
    assert code == 1
    assert "the validation split has 1 example(s) after --max-eval-samples 1" in err


def test_a_run_with_constant_dev_labels_reports_the_correlation_undefined(tmp_path, capsys,
                                                                          stsb_dir):
    _set_dev_rows(stsb_dir / "STS-B" / "dev.tsv", 6, "3.0")
    code, stdout, _ = run_main(capsys, "train", "--task", "stsb", "--data-dir", str(stsb_dir),
                               "--model", "tiny-bert", "--no-progress",
                               "--max-steps", "2", "--output-dir", str(tmp_path / "run"))
    assert code == 0
    record = json.loads((tmp_path / "run" / "record.json").read_text())
    assert record["main_metric"]["value"] is None
    assert record["metrics"]["validation"]["undefined"]["pearson"].startswith(
        "the labels are constant (3)")
    assert "validation pearson=undefined (the labels are constant (3)" in stdout


# ---------------------------------------------------------------------------------------------
# Run folders: refuse only what would lose or mix work; replace a finished identical run


RUN = ["--max-steps", "4", "--save-every-steps", "2"]


def test_a_finished_run_with_the_same_options_is_replaced_with_a_notice(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    code, _, err = train(capsys, tmp_path, *RUN)
    assert code == 0
    assert f"replacing the finished run in {tmp_path} (same options)" in err
    assert [p.name for p in list_checkpoints(tmp_path)] == ["step-00000002", "step-00000004"]


def test_a_finished_run_with_other_options_is_refused(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    record = (tmp_path / "record.json").read_text()
    code, _, err = train(capsys, tmp_path, *RUN, "--seed", "7")
    assert code == 1
    assert "holds a finished run made with other options (--seed 42 -> 7)" in err
    assert "--overwrite" in err
    assert (tmp_path / "record.json").read_text() == record  # untouched
    code, _, err = train(capsys, tmp_path, *RUN, "--seed", "7", "--overwrite")
    assert code == 0 and "--overwrite: removed the previous run" in err
    assert json.loads((tmp_path / "record.json").read_text())["seed"] == 7


def test_an_unfinished_run_is_refused_without_resume_or_overwrite(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    (tmp_path / "record.json").unlink()  # as if it had been killed after its checkpoints
    code, _, err = train(capsys, tmp_path, *RUN)
    assert code == 1
    assert "holds checkpoints of an unfinished run (newest: checkpoints/step-00000004)" in err
    assert "--resume" in err and "--overwrite" in err
    assert len(list_checkpoints(tmp_path)) == 2


def test_option_and_data_errors_come_before_the_folder_check(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    (tmp_path / "record.json").unlink()
    assert train(capsys, tmp_path, *RUN, "--lr", "0")[0] == 2
    code, _, err = run_main(capsys, "train", "--task", "sst2", "--data-dir",
                            str(tmp_path / "nowhere"), "--output-dir", str(tmp_path))
    assert code == 1 and "no such directory" in err


def test_a_locked_folder_names_the_other_run(tmp_path, capsys):
    with folder_lock(tmp_path):  # as a second run would find it
        code, _, err = train(capsys, tmp_path, "--max-steps", "2")
    assert code == 1
    assert f"--output-dir {tmp_path} is in use by another run (pid {os.getpid()} on " in err
    assert train(capsys, tmp_path, "--max-steps", "2")[0] == 0  # released


def test_pruning_never_deletes_the_checkpoint_just_written(tmp_path):
    model = torch.nn.Linear(2, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)

    def save(step: int) -> Path:
        return save_checkpoint(tmp_path, step, model, optimizer, scheduler, None, {"step": step},
                               {"task": "sst2"}, include_frozen=False, keep=2)

    save(200), save(253)  # an older run's higher-numbered checkpoints
    written = save(3)
    assert written.is_dir()
    assert list_checkpoints(tmp_path) == [written]  # the stale, higher ones went, not step 3


def test_resume_skips_a_damaged_checkpoint_and_says_why(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    (tmp_path / "record.json").unlink()
    newest = tmp_path / "checkpoints" / "step-00000004" / "optimizer.pt"
    newest.write_bytes(newest.read_bytes()[:100])  # truncated, as by a full disk
    code, out, _ = train(capsys, tmp_path, *RUN, "--resume")
    assert code == 0
    assert "skipping checkpoint step-00000004: optimizer.pt has 100 bytes" in out
    assert "resuming from" in out and "step-00000002 (step 2 of 4)" in out
    record = json.loads((tmp_path / "record.json").read_text())
    assert record["resumed_from"].endswith("step-00000002") and record["steps"] == 4


def test_resume_with_only_damaged_checkpoints_is_a_clear_error(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    (tmp_path / "record.json").unlink()
    for checkpoint in list_checkpoints(tmp_path):
        weights = checkpoint / "trainable_weights.safetensors"
        weights.write_bytes(b"\0" * weights.stat().st_size)  # same size, other bytes
    code, _, err = train(capsys, tmp_path, *RUN, "--resume")
    assert code == 1
    assert "no usable checkpoint in" in err
    assert "step-00000004: trainable_weights.safetensors does not match the SHA-256" in err


def test_every_file_of_a_run_folder_has_the_same_permissions(tmp_path, capsys):
    assert train(capsys, tmp_path, *RUN)[0] == 0
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != ".lock"]
    modes = {p.relative_to(tmp_path).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in files}
    assert "trainable_weights.safetensors" in modes
    assert "checkpoints/step-00000004/rng.safetensors" in modes
    assert len(set(modes.values())) == 1, modes


# ---------------------------------------------------------------------------------------------
# evaluate: unreadable files named, a mismatched task refused with exit 2


@pytest.fixture(scope="module")
def finished_sst2(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("sst2-run")
    assert main(["train", "--task", "sst2", *TINY, "--max-steps", "2", "--output-dir",
                 str(out)]) == 0
    return out


@pytest.mark.parametrize("file,content,message", [
    ("trainable_weights.safetensors", "truncate",
     "trainable_weights.safetensors: cannot be read as safetensors"),
    ("trainable_weights.safetensors", b"garbage, not tensors",
     "trainable_weights.safetensors: cannot be read as safetensors"),
    ("run_args.json", b"{not json", "run_args.json: cannot be read as JSON"),
    ("run_args.json", b'{"task": "sst2", "epochs": -1}', "run_args.json: not valid run "
                                                         "options (--epochs must be"),
])
def test_evaluate_names_an_unreadable_file(tmp_path, capsys, finished_sst2, file, content,
                                           message):
    run = shutil.copytree(finished_sst2, tmp_path / "run")
    path = run / file
    path.write_bytes(path.read_bytes()[:len(path.read_bytes()) // 2] if content == "truncate"
                     else content)
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", str(run), "--tiny")
    assert code == 1
    assert f"{path}" in err and message in err


def test_evaluate_on_a_task_the_checkpoint_does_not_fit_exits_2(capsys, finished_sst2):
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", str(finished_sst2), "--tiny",
                            "--task", "stsb")
    assert code == 2
    assert f"--task stsb does not match the checkpoint {finished_sst2}, trained on sst2" in err
    code, _, err = run_main(capsys, "evaluate", "--checkpoint", str(finished_sst2), "--tiny",
                            "--task", "cola")  # two labels too, but other ones
    assert code == 2 and "negative/positive" in err


# ---------------------------------------------------------------------------------------------
# Ctrl-C at any moment: exit 130, no traceback, a resume command only for a real checkpoint


def start(output_dir: Path, *extra: str, pause_at: int) -> subprocess.Popen:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           PAUSE_ENV: str(pause_at)}
    return subprocess.Popen([sys.executable, "-m", "d2l_utils", "train", "--task", "sst2",
                             *TINY, "--output-dir", str(output_dir), *extra],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def wait_for_pause(proc: subprocess.Popen, step: int) -> None:
    for line in proc.stdout:
        if line.strip() == f"paused at step {step}":
            return
    pytest.fail(f"run ended before step {step}: {proc.stderr.read()[-3000:]}")


def assert_clean_exit_130(err: str, code: int) -> None:
    assert code == 130, err[-2000:]
    assert "Traceback" not in err and "Exception ignored" not in err, err[-2000:]


def test_ctrl_c_at_startup(tmp_path):
    proc = start(tmp_path / "run", pause_at=0)  # before any heavy import
    wait_for_pause(proc, 0)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert_clean_exit_130(err, proc.returncode)
    assert "--resume" not in err


def test_stale_checkpoints_the_new_run_is_kept_and_resumed(tmp_path, capsys):
    """The issue's lost-work case: a finished run with higher-numbered checkpoints, a new
    run in the same folder interrupted with Ctrl-C (no --save-every-steps): its own checkpoint
    is kept, and the printed resume command continues it, not the old run."""
    out = tmp_path / "run"
    steps = ["--max-steps", "8"]
    assert train(capsys, out, *steps, "--save-every-steps", "3")[0] == 0  # keeps 3 and 6
    old = json.loads((out / "record.json").read_text())
    proc = start(out, *steps, pause_at=2)
    wait_for_pause(proc, 2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert_clean_exit_130(err, proc.returncode)
    assert "replacing the finished run" in err
    assert "checkpoint saved in" in err and "step-00000002" in err
    assert [p.name for p in list_checkpoints(out)] == ["step-00000002"]
    resume = err.split("Resume with:")[1].strip().split()
    assert resume[:4] == ["python", "-m", "d2l_utils", "train"] and resume[-1] == "--resume"
    code, stdout, _ = run_main(capsys, *resume[3:])  # the printed command, run as printed
    assert code == 0
    assert f"resuming from {out}/checkpoints/step-00000002 (step 2 of 8)" in stdout
    record = json.loads((out / "record.json").read_text())
    assert record["resumed_from"].endswith("step-00000002")
    assert record["steps"] == 8 and record["finished_at"] >= old["finished_at"]


def test_two_quick_ctrl_c_then_one_more_while_exiting(tmp_path, capsys):
    out = tmp_path / "run"
    proc = start(out, "--max-steps", "5", "--save-every-steps", "2", pause_at=3)
    wait_for_pause(proc, 3)
    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGINT)
    err_lines = []
    for line in proc.stderr:  # the message is printed: the process is on its way out
        err_lines.append(line)
        if "Resume with:" in line:
            proc.send_signal(signal.SIGINT)
    proc.wait(timeout=120)
    err = "".join(err_lines)
    assert_clean_exit_130(err, proc.returncode)
    assert "Resume with:" in err  # steps 2 (and perhaps 3) of this run were saved
    named = [p for p in list_checkpoints(out) if p.name in err]
    assert named, err
    code, stdout, _ = train(capsys, out, "--max-steps", "5", "--save-every-steps", "2",
                            "--resume")
    assert code == 0 and f"resuming from {named[-1]}" in stdout


def test_a_second_run_in_a_busy_folder_is_refused_and_sigkill_frees_it(tmp_path, capsys):
    out = tmp_path / "run"
    proc = start(out, "--max-steps", "2", pause_at=1)
    wait_for_pause(proc, 1)
    try:
        code, _, err = train(capsys, out, "--max-steps", "2")
        assert code == 1
        assert f"is in use by another run (pid {proc.pid} on " in err
        assert "python -m d2l_utils train" in err
    finally:
        proc.kill()
        proc.communicate()
    assert train(capsys, out, "--max-steps", "2")[0] == 0  # the kernel dropped the lock


# ---------------------------------------------------------------------------------------------
# Every catchable stop signal is Ctrl-C: SIGTERM (kill, schedulers, container stops) and SIGHUP
# save a checkpoint at the current step and print the resume command; exit 128 + the signal


STOP_SIGNALS = [name for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name)]


@pytest.mark.parametrize("name,extra", [
    *[(name, []) for name in STOP_SIGNALS],  # no --save-every-steps: all steps were lost
    ("SIGTERM", ["--save-every-steps", "2"]),  # the checkpoints stopped at step 4
])
def test_a_stop_signal_saves_a_checkpoint_like_ctrl_c(tmp_path, capsys, name, extra):
    signum = getattr(signal, name)
    out = tmp_path / "run"
    proc = start(out, "--max-steps", "8", *extra, pause_at=5)
    wait_for_pause(proc, 5)
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signum, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert f"interrupted by {name} at step 5; checkpoint saved in {out}/checkpoints/" in err
    assert list_checkpoints(out)[-1].name == "step-00000005"
    resume = err.split("Resume with:")[1].strip().split()
    code, stdout, _ = run_main(capsys, *resume[3:])  # the printed command, run as printed
    assert code == 0
    assert f"resuming from {out}/checkpoints/step-00000005 (step 5 of 8)" in stdout
    assert json.loads((out / "record.json").read_text())["steps"] == 8


def test_a_stop_signal_makes_the_hf_trainer_save_and_stop(tmp_path, capsys):
    out = tmp_path / "run"
    proc = start(out, "--trainer", "hf", "--max-steps", "6", pause_at=3)
    wait_for_pause(proc, 3)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err[-2000:]
    assert "Traceback" not in err, err[-2000:]
    assert f"interrupted by SIGTERM at step 3; checkpoint saved in {out}/checkpoint-3" in err
    assert (out / "checkpoint-3" / "trainer_state.json").is_file()
    code, _, _ = run_main(capsys, *err.split("Resume with:")[1].strip().split()[3:])
    assert code == 0
    assert json.loads((out / "record.json").read_text())["steps"] == 6


# ---------------------------------------------------------------------------------------------
# A full disk: refused before training when the run's files cannot fit; a failed write is one
# line naming the file and the free space, keeps the last whole checkpoint, leaves no temporary
# folder, and the run resumes once space is freed. On a real small disk (a tmpfs, as root) and
# with an injected OSError (anywhere)


@pytest.fixture
def small_disk(tmp_path):
    """mount(size) -> a folder on a tmpfs of that size; skipped where mounting is not allowed."""
    mounted = []

    def mount(size: str) -> Path:
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root; the injected-error tests cover it")
        folder = tmp_path / f"disk-{size}"
        folder.mkdir()
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs",
                               str(folder)], capture_output=True, text=True)
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", str(folder)], check=False)


def test_a_run_too_big_for_a_2mb_disk_is_refused_before_training(capsys, small_disk):
    out = small_disk("2m") / "run"
    code, stdout, err = train(capsys, out, "--max-steps", "2")
    assert code == 1
    assert f"error: --output-dir {out}: " in err and "MiB free, this run needs about" in err
    assert "for the final weights and record" in err
    assert len([line for line in err.splitlines() if "error" in line]) == 1
    assert "step" not in stdout and not list(out.iterdir())[1:]  # only .lock: nothing trained


def test_the_disk_check_counts_keep_plus_one_checkpoints(tmp_path, capsys, monkeypatch):
    """Room for 2.5 checkpoints: enough for one, not for keeping two while a third is written."""
    from d2l_utils.training import checkpoints

    real = shutil.disk_usage
    monkeypatch.setattr(checkpoints.shutil, "disk_usage",
                        lambda path: real(path)._replace(free=int(2.5 * 26 * 2**20)))
    code, _, err = train(capsys, tmp_path / "run", *RUN)
    assert code == 1
    assert "MiB for 3 checkpoints (--keep-checkpoints 2 + the one being written)" in err
    assert not list_checkpoints(tmp_path / "run")
    assert train(capsys, tmp_path / "run", *RUN, "--keep-checkpoints", "1")[0] == 0


def _assert_failed_write(err: str, out: Path, kept: str) -> None:
    assert "Traceback" not in err, err[-2000:]
    line = [t for t in err.splitlines() if t.startswith("error: ")]
    assert len(line) == 1, err[-2000:]
    assert f"error: cannot write {out}/" in line[0] and "No space left on device" in line[0]
    assert "MiB free on its disk" in line[0]
    assert f"the last whole checkpoint is {out}/checkpoints/{kept}: free some space, then " \
           "resume with: " in line[0] and line[0].endswith("--resume")
    assert not list((out / "checkpoints").glob(".tmp-*"))
    assert list_checkpoints(out)[-1].name == kept
    assert not (out / "record.json").exists()


def test_a_full_disk_at_a_checkpoint_keeps_the_last_one_and_resumes(tmp_path, capsys,
                                                                     monkeypatch):
    import errno

    from d2l_utils.training import checkpoints

    real = checkpoints.torch.save

    def full_at_step_4(obj, path: Path) -> None:
        if path.parent.name.startswith(".tmp-step-00000004"):
            path.write_bytes(b"partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        real(obj, path)

    monkeypatch.setattr(checkpoints.torch, "save", full_at_step_4)
    out = tmp_path / "run"
    code, _, err = train(capsys, out, "--max-steps", "6", "--save-every-steps", "2")
    assert code == 1
    _assert_failed_write(err, out, "step-00000002")
    assert "optimizer.pt" in err
    monkeypatch.setattr(checkpoints.torch, "save", real)  # space freed
    code, stdout, _ = train(capsys, out, "--max-steps", "6", "--save-every-steps", "2",
                            "--resume")
    assert code == 0 and "(step 2 of 6)" in stdout


def test_a_full_disk_at_the_final_save_keeps_the_checkpoints(tmp_path, capsys, monkeypatch):
    from safetensors import SafetensorError

    from d2l_utils.training import saving

    real = saving.save_file

    def full_for_the_final_weights(tensors, path: str, metadata=None) -> None:
        if Path(path).parent.name == "run":
            raise SafetensorError("Error while serializing: IoError(Os { code: 28, kind: "
                                  'StorageFull, message: "No space left on device" })')
        real(tensors, path, metadata=metadata)

    monkeypatch.setattr(saving, "save_file", full_for_the_final_weights)
    out = tmp_path / "run"
    code, _, err = train(capsys, out, *RUN)
    assert code == 1
    _assert_failed_write(err, out, "step-00000004")
    assert not list(out.glob("*.tmp"))
    monkeypatch.setattr(saving, "save_file", real)
    assert train(capsys, out, *RUN, "--resume")[0] == 0
    assert (out / "record.json").is_file()


def test_a_real_full_disk_mid_run(small_disk, capsys):
    """A 100 MB tmpfs: the run fits; at step 4 the disk is filled, the checkpoint there fails."""
    disk = small_disk("100m")
    out = disk / "run"
    steps = ["--max-steps", "6", "--save-every-steps", "2"]
    proc = start(out, *steps, pause_at=4)
    wait_for_pause(proc, 4)
    filler = disk / "filler"
    with open(filler, "wb") as handle:  # leave 3 MB: less than a checkpoint
        handle.write(b"\0" * (shutil.disk_usage(disk).free - 3 * 2**20))
    proc.send_signal(signal.SIGTERM)  # step 4's checkpoint (due anyway) is written now
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 1, err[-2000:]
    _assert_failed_write(err, out, "step-00000002")
    filler.unlink()
    resume = [line for line in err.splitlines() if "resume with:" in line][0]
    code, stdout, _ = run_main(capsys, *resume.split("resume with: ")[1].split()[3:])
    assert code == 0 and "(step 2 of 6)" in stdout


# ---------------------------------------------------------------------------------------------
# Resume checks the data: a checkpoint records the size and SHA-256 of each file it trained on


def test_resume_refuses_changed_data_unless_allowed(tmp_path, capsys):
    glue = write_fixtures(tmp_path / "glue", ["sst2"])
    out = tmp_path / "run"
    command = ["train", "--task", "sst2", "--data-dir", str(glue), "--model", "tiny-bert",
               "--no-progress", "--output-dir", str(out), *RUN]
    assert run_main(capsys, *command)[0] == 0
    (out / "record.json").unlink()  # as if it had been stopped after its checkpoints
    train_file = glue / "SST-2" / "train.tsv"
    lines = train_file.read_text().splitlines()
    flipped = [lines[0]] + [line[:-1] + ("1" if line.endswith("0") else "0")
                            for line in lines[1:]]  # labels flipped in place: same size
    train_file.write_text("\n".join(flipped) + "\n")
    code, _, err = run_main(capsys, *command, "--resume")
    assert code == 1
    assert (f"cannot resume from {out}/checkpoints/step-00000004: the data changed since it "
            f"was saved ({train_file.resolve()} changed (same size, other SHA-256))") in err
    assert "--allow-data-change" in err
    code, stdout, _ = run_main(capsys, *command, "--resume", "--allow-data-change")
    assert code == 0
    assert f"continuing on changed data ({train_file.resolve()} changed" in stdout
    record = json.loads((out / "record.json").read_text())
    assert record["data"]["changed_on_resume"] == [
        f"{train_file.resolve()} changed (same size, other SHA-256)"]
    assert record["data"]["fingerprint"]["train"]["sha256"] != record["data"]["fingerprint"][
        "validation"]["sha256"]


def test_allow_data_change_is_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    assert "--allow-data-change" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------
# Environment variables: validated in one place (profiles.check_environment), one line, exit 2


@pytest.mark.parametrize("var,value,message", [
    ("D2L_PROFILE", "gpuu", "D2L_PROFILE='gpuu': choose one of tiny, cpu, gpu (did you mean "
                            "gpu?)"),
    ("D2L_PROFILE", "laptop", "D2L_PROFILE='laptop': choose one of tiny, cpu, gpu"),
    ("D2L_MAX_STEPS", "-3", "D2L_MAX_STEPS='-3': must be a positive integer"),
    ("D2L_MAX_BATCH_SIZE", "abc", "D2L_MAX_BATCH_SIZE='abc': must be a positive integer"),
    ("D2L_TINY", "flase", "D2L_TINY='flase': not a yes/no value; use 1, true, yes or on, or 0"),
])
def test_a_bad_environment_variable_is_one_line_and_exit_2(tmp_path, capsys, monkeypatch, var,
                                                           value, message):
    for name in ("D2L_PROFILE", "D2L_TINY", "D2L_MAX_STEPS", "D2L_MAX_BATCH_SIZE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(var, value)
    code, _, err = train(capsys, tmp_path / "run", "--max-steps", "2")
    assert code == 2
    assert err.startswith(f"error: {message}")
    assert err.strip().count("\n") == 0
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("value,tiny", [("1", True), ("Yes", True), ("on", True), ("0", False),
                                        ("off", False), ("", False)])
def test_yes_no_variables_accept_the_usual_spellings(monkeypatch, value, tiny):
    from d2l_utils.profiles import tiny_profile

    monkeypatch.delenv("D2L_PROFILE", raising=False)
    monkeypatch.setenv("D2L_TINY", value)
    assert tiny_profile() is tiny


@pytest.mark.skipif(torch.cuda.is_available(), reason="fp16 is valid with a GPU")
def test_fp16_on_a_cpu_is_refused_before_data_and_model_load(tmp_path, capsys, monkeypatch):
    import d2l_utils.training.run as run_module

    def must_not_load(*args, **kwargs):
        raise AssertionError("data and model were loaded before the precision was checked")

    monkeypatch.setattr(run_module, "prepare_run", must_not_load)
    code, _, err = train(capsys, tmp_path / "out", "--mixed-precision", "fp16")
    assert code == 2 and "fp16 needs a CUDA GPU" in err and "--mixed-precision" in err
    assert not (tmp_path / "out").exists()
