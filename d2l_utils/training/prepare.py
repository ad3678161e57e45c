"""Build everything a trainer needs from `RunArguments`: data, tokenizer, model and method."""

from __future__ import annotations

import json
import os
import shutil
import socket
import sys
import time
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator

import torch.nn as nn
from datasets import DatasetDict
from filelock import FileLock, Timeout
from transformers import PreTrainedTokenizerBase, set_seed

from ..arguments import RunArguments
from ..backbones import Backbone, load_config, load_tokenizer, resolve_backbone
from ..data import data_fingerprint, load_task_data
from ..methods import MethodConfig, build_model, check_trainable, count_parameters
from ..preprocessing import tokenize_splits
from ..tasks import TaskSpec
from .checkpoints import changed_options, checkpoint_root, describe_changes


@dataclass
class PreparedRun:
    """Everything a trainer needs, built once from `RunArguments`."""

    args: RunArguments  # resolved: no None defaults left
    task: TaskSpec
    method: MethodConfig
    backbone: Backbone
    tokenizer: PreTrainedTokenizerBase
    model: nn.Module
    data: DatasetDict  # tokenized splits
    params: dict[str, Any]
    data_fingerprint: dict[str, dict[str, Any]]  # split -> file, size, SHA-256 (or hub's)

    @property
    def data_source(self) -> str:
        if self.args.tiny:
            return "built-in fixtures (d2l_utils.fixtures)"
        return f"local GLUE folder {self.args.data_dir}" if self.args.data_dir else "hub"


def prepare_run(args: RunArguments) -> PreparedRun:
    """Load data, tokenizer and model, and apply the method; seeded, so runs repeat exactly."""
    args = args.resolved()
    task, method = args.task_spec, args.method_config()
    set_seed(args.seed)
    raw = load_task_data(task, data_dir=args.data_dir, tiny=args.tiny,
                         max_train_samples=args.max_train_samples,
                         max_eval_samples=args.max_eval_samples, seed=args.seed)
    backbone = resolve_backbone(args.model, random_init=args.random_init)
    check_trainable(backbone, task, method)  # before the weights are loaded
    tokenizer = load_tokenizer(backbone, load_config(backbone, task))
    model = build_model(backbone, task, method)
    data = tokenize_splits(raw, tokenizer, task, args.max_seq_length)
    return PreparedRun(args, task, method, backbone, tokenizer, model, data,
                       count_parameters(model),
                       data_fingerprint(task, raw, data_dir=args.data_dir, tiny=args.tiny))


def check_output_dir(output_dir: str) -> Path:
    """Create the output directory and fail now, not after training, if it is not writable."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".write_test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OSError(f"--output-dir {path} is not writable ({err.strerror}); choose "
                      "another folder") from None
    return path


# ---------------------------------------------------------------------------------------------
# The run folder: one run at a time, and never mixed with or over another run's work

LOCK_FILE = ".lock"


class RunFolderError(OSError):
    """An output folder this run must not use as it is; the message says what to do."""

    def __str__(self) -> str:  # OSError would prefix an errno
        return self.args[0]


@contextmanager
def folder_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path/.lock` while the block runs (filelock: `flock` on POSIX,
    `msvcrt` on Windows).

    The operating system drops the lock when the process ends however it ends (SIGKILL, a crash,
    a Colab disconnect), so a stale lock never blocks the next run. A second run finds it taken
    and is refused with the first one's pid, host, start time and command (written in the file).
    """
    lock_path = path / LOCK_FILE
    lock = FileLock(lock_path, timeout=0)
    try:
        lock.acquire()
    except Timeout:
        try:
            holder = lock_path.read_text(encoding="utf-8", errors="replace").strip()
        except OSError:  # Windows: the holder's locked byte cannot be read
            holder = ""
        raise RunFolderError(f"--output-dir {path} is in use by another run "
                             f"({holder or 'its process is starting'}); wait for it to "
                             "finish, or choose another --output-dir") from None
    try:
        # who holds it, for the message above; the lock works without it
        with suppress(OSError), open(lock_path, "r+", encoding="utf-8") as file:
            file.truncate(0)
            # its own time and command line: training.record imports this module (no cycle)
            started = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            command = " ".join(["python -m d2l_utils" if sys.argv[0].endswith("__main__.py")
                                else sys.argv[0], *sys.argv[1:]])
            file.write(f"pid {os.getpid()} on {socket.gethostname()}, started {started}: "
                       f"{command}\n")
        yield
    finally:
        lock.release()


RUN_FILES = ("record.json", "record.json.tmp", "trainable_weights.safetensors",
             "trainable_weights.safetensors.tmp", "run_args.json", "run_args.json.tmp")


def _checkpoint_folders(path: Path) -> list[Path]:
    """Checkpoints of the library loop (complete or not) and of the HF Trainer."""
    return [p for p in [*checkpoint_root(path).glob("*"), *path.glob("checkpoint-*")]
            if p.is_dir()]


def _written_at(folder: Path) -> float:
    files = [p for p in folder.iterdir() if p.is_file()] if folder.is_dir() else []
    return max([folder.stat().st_mtime] + [p.stat().st_mtime for p in files])


def clear_run(path: Path) -> list[str]:
    """Delete a run's own files from `path` (record, weights, options, checkpoints) and
    nothing else; returns what was removed."""
    removed = []
    for name in RUN_FILES:
        if (path / name).is_file():
            (path / name).unlink()
            removed.append(name)
    for folder in _checkpoint_folders(path):
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(f"{folder.relative_to(path)}/")
    shutil.rmtree(checkpoint_root(path), ignore_errors=True)
    return removed


def check_run_folder(path: Path, args: RunArguments, say=print) -> None:
    """Refuse a folder only where this run would lose or mix work; replace a finished run of
    the same options with a notice (re-running a cell or a command just works).

    - checkpoints newer than any finished record: an unfinished run; `--resume` continues it,
      `--overwrite` starts afresh; a new run without either is refused;
    - a finished run (record.json) made with other options: refused (`--overwrite`);
    - a finished run with the same options: removed, with a one-line notice.
    """
    if args.overwrite:
        if removed := clear_run(path):
            say(f"--overwrite: removed the previous run in {path} ({', '.join(removed)})")
        return
    checkpoints = _checkpoint_folders(path)
    if args.resume and checkpoints:
        return  # the trainer continues them (and refuses them if the options differ)
    record_path = path / "record.json"
    record, saved_args = None, None
    if record_path.is_file():
        try:
            record = json.loads(record_path.read_text())
            saved_args = record["args"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise RunFolderError(f"{record_path} cannot be read ({type(err).__name__}: {err}); "
                                 "move it away, or pass --overwrite to replace the run") from None
    newest = max(checkpoints, key=_written_at, default=None)
    if newest is not None and (record is None
                               or _written_at(newest) > record_path.stat().st_mtime):
        raise RunFolderError(
            f"--output-dir {path} holds checkpoints of an unfinished run (newest: "
            f"{newest.relative_to(path)}); add --resume to continue it, or --overwrite to "
            "start afresh")
    if saved_args is None and (path / "run_args.json").is_file():  # weights without a record
        try:
            saved_args = json.loads((path / "run_args.json").read_text())
        except (OSError, ValueError):
            saved_args = {}
    if saved_args is None:
        return
    if changed := changed_options(saved_args, asdict(args)):
        raise RunFolderError(
            f"--output-dir {path} holds a finished run made with other options "
            f"({describe_changes(changed)}); pass --overwrite to replace it, or choose another "
            "--output-dir")
    clear_run(path)
    say(f"note: replacing the finished run in {path} (same options)")


@contextmanager
def claim_output_dir(args: RunArguments) -> Iterator[Path]:
    """The run's output folder, writable, locked for the run, and checked (`check_run_folder`).
    In the extra processes of a multi-process launch, only the writability is checked: rank 0
    owns the folder."""
    path = check_output_dir(args.output_dir)
    if os.environ.get("RANK", "0") not in ("", "0"):  # an extra process of `accelerate launch`
        yield path
        return
    with folder_lock(path):
        check_run_folder(path, args, say=lambda text: print(text, file=sys.stderr, flush=True))
        yield path
