"""Training checkpoints that survive a kill: atomic writes, the last K kept, exact resume.

A checkpoint is a folder `OUTPUT_DIR/checkpoints/step-00000123/` holding the trainable weights
(safetensors), the optimizer and scheduler state, every RNG state and the loop's counters
(including the position inside the epoch). It is written under a temporary name and renamed when
complete, so a half-written checkpoint is never picked up. `manifest.json` lists the size and
SHA-256 of every file, so `--resume` notices a truncated or damaged file and falls back to the
newest checkpoint that is whole (saying which it skipped and why). Nothing is unpickled on load:
safetensors, JSON, and `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from .saving import (
    SavedRunError,
    WriteError,
    first_line,
    free_space,
    load_run_args,
    read_tensors,
    read_trainable,
    save_tensors,
    save_trainable,
    weights_bytes,
    writing,
)

CHECKPOINT_DIR = "checkpoints"
MANIFEST = "manifest.json"
STATE = "state.json"
_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def checkpoint_step(path: Path) -> int:
    return int(_NAME.match(path.name).group(1))


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are ignored)."""
    found = [p for p in checkpoint_root(output_dir).glob("step-*") if _NAME.match(p.name)
             and (p / STATE).is_file()]  # none when there is no folder
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    return next(reversed(list_checkpoints(output_dir)), None)


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG the loop touches: torch (CPU and CUDA) as tensors, Python and NumPy as JSON."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        tensors.update({f"cuda_{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    py_version, py_state, py_gauss = random.getstate()
    np_name, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    return tensors, {"python": [py_version, list(py_state), py_gauss],
                     "numpy": [np_name, np_keys.tolist(), np_pos, np_has_gauss, np_gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], plain: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    cuda = [tensors[k] for k in sorted(k for k in tensors if k.startswith("cuda_"))]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    version, state, gauss = plain["python"]
    random.setstate((version, tuple(state), gauss))
    name, keys, pos, has_gauss, gauss = plain["numpy"]
    np.random.set_state((name, np.array(keys, dtype=np.uint32), pos, has_gauss, gauss))


RECORD_ROOM = 1_000_000  # record.json, run_args.json and a checkpoint's small files


def check_disk_space(output_dir: str | os.PathLike, model: nn.Module, include_frozen: bool,
                     save_model: bool, keep: int | None) -> None:
    """Refuse, before training, a run whose files would not fit on the disk: the final weights
    and record, and with checkpoints (`keep` not None) `keep` + 1 of them, since the newest is
    written before the oldest goes. Checkpoints already in the folder count as room (a resumed
    run prunes them)."""
    parts = {"the final weights and record": (weights_bytes(model, include_frozen)
                                              if save_model else 0) + RECORD_ROOM}
    if keep is not None:  # a checkpoint: the weights, and AdamW's two moments of the trainable
        one = 2 * weights_bytes(model) + weights_bytes(model, include_frozen) + RECORD_ROOM
        parts[f"{keep + 1} checkpoints (--keep-checkpoints {keep} + the one being written)"] = (
            (keep + 1) * one)
    needed = sum(parts.values())
    reusable = sum(p.stat().st_size for p in checkpoint_root(output_dir).rglob("*") if p.is_file())
    free = shutil.disk_usage(output_dir).free
    if free + reusable < needed:
        details = " + ".join(f"{size / 2**20:.1f} MiB for {what}" for what, size in parts.items())
        raise WriteError(f"--output-dir {output_dir}: {free / 2**20:.1f} MiB free"
                         + (f" (+ {reusable / 2**20:.1f} MiB of old checkpoints)" if reusable
                            else "")
                         + f", this run needs about {needed / 2**20:.1f} MiB ({details}); free "
                         "some space or choose another folder"
                         + (" or lower --keep-checkpoints" if keep is not None else ""))


def resume_hint(output_dir: str | os.PathLike, command: str) -> str:
    """What to do after a failed write: resume from the last whole checkpoint, if any."""
    if (latest := latest_checkpoint(output_dir)) is None:
        return "no checkpoint of this run was written: free some space and run it again"
    return (f"the last whole checkpoint is {latest}: free some space, then resume with: "
            f"{resume_command(command)}")


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _torch_save(obj: Any, path: Path) -> None:
    with writing(path):
        torch.save(obj, path)


def _write_json(path: Path, value: Any, indent: int | None = None) -> None:
    with writing(path):
        path.write_text(json.dumps(value, indent=indent))


def save_checkpoint(output_dir: str | os.PathLike, step: int, model: nn.Module,
                    optimizer, scheduler, scaler, state: dict[str, Any], run_args: dict,
                    include_frozen: bool, keep: int) -> Path:
    """Write a complete checkpoint atomically, then prune: keep the newest `keep` up to this
    step, and drop any of a higher step (left by a run this one does not continue: their steps
    are not this run's). The checkpoint just written is never deleted."""
    root = checkpoint_root(output_dir)
    final = root / f"step-{step:08d}"
    root.mkdir(parents=True, exist_ok=True)
    for stale in root.glob(".tmp-step-*"):  # half-written by a killed run (the folder is locked)
        shutil.rmtree(stale, ignore_errors=True)
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    try:
        tmp.mkdir(parents=True)
        save_trainable(model, tmp, run_args, include_frozen=include_frozen)
        _torch_save(optimizer.state_dict(), tmp / "optimizer.pt")
        _torch_save(scheduler.state_dict(), tmp / "scheduler.pt")
        if scaler is not None and scaler.state_dict():  # fp16's gradient scaler
            _torch_save(scaler.state_dict(), tmp / "scaler.pt")
        tensors, plain = rng_state()
        save_tensors(tensors, tmp / "rng.safetensors")
        _write_json(tmp / "rng.json", plain)
        _write_json(tmp / STATE, state)
        files = {p.name: {"bytes": p.stat().st_size, "sha256": _sha256(p)}
                 for p in sorted(tmp.iterdir()) if p.is_file()}
        _write_json(tmp / MANIFEST, files, indent=1)
    except OSError as err:  # WriteError, or the folder itself (mkdir) could not be made
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, WriteError):
            raise
        raise WriteError(f"cannot write {tmp} ({err.strerror}); {free_space(root)} free on its "
                         "disk") from None
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    saved = list_checkpoints(output_dir)
    stale = [p for p in saved if checkpoint_step(p) > step]
    older = [p for p in saved if checkpoint_step(p) < step]
    for old in stale + (older[:max(len(older) - (keep - 1), 0)] if keep > 0 else []):
        shutil.rmtree(old, ignore_errors=True)
    return final


# ---------------------------------------------------------------------------------------------
# Resuming


def verify_checkpoint(path: Path) -> str | None:
    """Why the checkpoint at `path` cannot be used (a missing, truncated or changed file), or
    None when every file matches its manifest. Checkpoints from before manifests are trusted
    here; reading them still catches a damaged file."""
    manifest = path / MANIFEST
    if not manifest.is_file():
        return None
    try:
        files = json.loads(manifest.read_text())
    except (OSError, ValueError) as err:
        return f"{MANIFEST} cannot be read ({err})"
    for name, expected in files.items():
        file = path / name
        if not file.is_file():
            return f"{name} is missing"
        if (size := file.stat().st_size) != expected["bytes"]:
            return f"{name} has {size:,} bytes, {expected['bytes']:,} were written (truncated?)"
        if _sha256(file) != expected["sha256"]:
            return f"{name} does not match the SHA-256 written with it (damaged)"
    return None


@dataclass
class CheckpointContents:
    """A checkpoint read into memory, not yet applied to anything."""

    path: Path
    weights: dict[str, torch.Tensor]
    optimizer: dict
    scheduler: dict
    scaler: dict | None
    rng: tuple[dict[str, torch.Tensor], dict[str, Any]]  # as `rng_state` returns it
    state: dict[str, Any]


def _read_torch(path: Path) -> Any:
    if not path.is_file():
        raise SavedRunError(f"{path}: missing")
    try:
        return torch.load(path, weights_only=True)
    except Exception as err:  # a truncated zip, an unpickling error: all mean a damaged file
        raise SavedRunError(f"{path}: cannot be read ({type(err).__name__}: "
                            f"{first_line(err)})") from None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as err:
        raise SavedRunError(f"{path}: cannot be read as JSON ({err})") from None


def read_checkpoint(path: Path, model: nn.Module) -> CheckpointContents:
    """Read every file of a checkpoint (a damaged one raises `SavedRunError` naming it)
    before anything is changed, so a bad checkpoint leaves the model and optimizer untouched."""
    scaler_file = path / "scaler.pt"
    return CheckpointContents(
        path=path, weights=read_trainable(model, path),
        optimizer=_read_torch(path / "optimizer.pt"),
        scheduler=_read_torch(path / "scheduler.pt"),
        scaler=_read_torch(scaler_file) if scaler_file.is_file() else None,
        rng=(read_tensors(path / "rng.safetensors")[0], _read_json(path / "rng.json")),
        state=_read_json(path / STATE))


def apply_checkpoint(contents: CheckpointContents, model: nn.Module, optimizer, scheduler,
                     scaler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler, scaler and RNGs; return the loop's counters."""
    model.load_state_dict(contents.weights, strict=False)
    try:
        optimizer.load_state_dict(contents.optimizer)
        scheduler.load_state_dict(contents.scheduler)
    except (ValueError, KeyError, RuntimeError) as err:
        raise SavedRunError(f"{contents.path}: the optimizer state does not fit this model "
                            f"({err})") from None
    if scaler is not None and contents.scaler is not None:
        scaler.load_state_dict(contents.scaler)
    set_rng_state(*contents.rng)
    return contents.state


# The options that do not change what a run computes (where it writes, how it reports and
# checkpoints): the one set both checks use, a resume (`check_resumable`) and a rerun in a folder
# that holds a finished run (`prepare.check_run_folder`).
SAME_RUN_FREE = frozenset({"output_dir", "resume", "overwrite", "progress", "save_every_steps",
                           "keep_checkpoints", "allow_data_change"})


class ResumeError(ValueError):
    """A checkpoint that does not belong to this command, or none that can be read."""


def changed_options(saved: dict[str, Any], current: dict[str, Any]
                    ) -> dict[str, tuple[Any, Any]]:
    """{option: (saved value, current value)} for the options that make another run (not in
    `SAME_RUN_FREE`). An option the saved run did not have yet (an older version of the
    library) is not a difference."""
    return {k: (saved[k], v) for k, v in current.items()
            if k not in SAME_RUN_FREE and k in saved and saved[k] != v}


def describe_changes(changed: dict[str, tuple[Any, Any]]) -> str:
    return ", ".join(f"--{k.replace('_', '-')} {old!r} -> {new!r}"
                     for k, (old, new) in changed.items())


def check_resumable(path: Path, current: dict[str, Any]) -> None:
    """Refuse to resume from a checkpoint saved with other options (say which differ)."""
    if changed := changed_options(load_run_args(path), current):
        raise ResumeError(f"cannot resume from {path}: options differ from the saved run "
                          f"({describe_changes(changed)}); rerun with the original options or "
                          "another --output-dir")


def check_same_data(path: Path, saved: dict[str, dict] | None, current: dict[str, dict],
                    allow: bool, say: Callable[[str], None] = print) -> list[str]:
    """Refuse to resume from `path` on other data than it trained on (one change per split; none
    for checkpoints written before fingerprints), unless `allow` (`--allow-data-change`);
    returns the changes allowed."""
    changes = []
    for split, now in current.items():
        then = (saved or {}).get(split)
        if then is None or then == now:
            continue
        if "file" in now and then.get("file") == now["file"]:
            size = (f"{then['bytes']:,} -> {now['bytes']:,} bytes" if then["bytes"] != now["bytes"]
                    else "same size, other SHA-256")
            changes.append(f"{now['file']} changed ({size})")
        else:
            old, new = then.get("file") or then.get("hub"), now.get("file") or now.get("hub")
            changes.append(f"the {split} split is now {new}" + (f" (was {old})" if old != new
                                                                  else " (changed on the hub)"))
    if changes and not allow:
        raise ResumeError(f"cannot resume from {path}: the data changed since it was saved ("
                          + "; ".join(changes) + "); restore the data, pass "
                          "--allow-data-change to continue on the new data, or --overwrite to "
                          "start afresh")
    if changes:
        say("note: --allow-data-change: continuing on changed data (" + "; ".join(changes) + ")")
    return changes


def resume_command(command: str) -> str:
    """The command that continues a run started with `command`: with --resume, without
    --overwrite (which would delete the checkpoints it should continue from)."""
    parts = [p for p in command.split(" ") if p not in ("--overwrite", "--resume")]
    return " ".join(parts + ["--resume"])


def find_resumable(output_dir: str | os.PathLike, current: dict[str, Any], model: nn.Module,
                   say: Callable[[str], None] = print) -> CheckpointContents | None:
    """The newest checkpoint of `output_dir` whose files are whole, read into memory; the ones
    skipped are named with the reason. None when there is no checkpoint at all; a
    `ResumeError` when there are some but none can be used, or when they belong to a run
    with other options."""
    problems = []
    for path in reversed(list_checkpoints(output_dir)):
        if (problem := verify_checkpoint(path)) is None:
            try:
                check_resumable(path, current)
                contents = read_checkpoint(path, model)
            except (SavedRunError, FileNotFoundError) as err:
                problem = str(err).removeprefix(f"{path}/").removeprefix(f"{path}")
            else:
                for skipped in problems:
                    say(f"skipping checkpoint {skipped}")
                return contents
        problems.append(f"{path.name}: {problem.lstrip(': ')}")
    if problems:
        raise ResumeError(f"no usable checkpoint in {checkpoint_root(output_dir)} ("
                          + "; ".join(problems) + "); start afresh with --overwrite instead "
                          "of --resume")
    return None
