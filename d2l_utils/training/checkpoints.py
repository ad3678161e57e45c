"""Training checkpoints that survive a kill: atomic writes, the last K kept, exact resume.

A checkpoint is a folder `OUTPUT_DIR/checkpoints/step-00000123/` holding the trainable weights
(safetensors), the optimizer and scheduler state, every RNG state and the loop's counters
(including the position inside the epoch). It is written under a temporary name and renamed when
complete, so a half-written checkpoint is never picked up. Nothing is unpickled on load:
safetensors, JSON, and `torch.load(..., weights_only=True)`.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from safetensors.torch import load_file, save_file

from .saving import load_run_args, load_trainable, save_trainable, trainable_state_dict

CHECKPOINT_DIR = "checkpoints"
_NAME = re.compile(r"^step-(\d{8})$")


def checkpoint_root(output_dir: str | os.PathLike) -> Path:
    return Path(output_dir) / CHECKPOINT_DIR


def list_checkpoints(output_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders are ignored)."""
    root = checkpoint_root(output_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and _NAME.match(p.name)
             and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(_NAME.match(p.name).group(1)))


def latest_checkpoint(output_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(output_dir)
    return found[-1] if found else None


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Every RNG the loop touches: torch (CPU and CUDA) as tensors, Python and NumPy as JSON."""
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda_{i}"] = state
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


def required_bytes(model: nn.Module, include_frozen: bool) -> int:
    """Rough size of one checkpoint: weights plus AdamW's two moments for trainable ones."""
    trainable = sum(t.numel() * t.element_size() for t in trainable_state_dict(model).values())
    frozen = sum(p.numel() * p.element_size() for p in model.parameters()) if include_frozen else 0
    return 3 * trainable + frozen + 1_000_000


def check_disk_space(output_dir: str | os.PathLike, needed: int) -> None:
    """Fail before training when one checkpoint would not fit on the disk."""
    free = shutil.disk_usage(output_dir).free
    if free < needed:
        raise OSError(f"--output-dir {output_dir}: only {free / 2**20:.0f} MiB free, one "
                      f"checkpoint needs about {needed / 2**20:.0f} MiB; free some space or "
                      "choose another folder")


def save_checkpoint(output_dir: str | os.PathLike, step: int, model: nn.Module,
                    optimizer, scheduler, scaler, state: dict[str, Any], run_args: dict,
                    include_frozen: bool, keep: int) -> Path:
    """Write a complete checkpoint atomically, then delete all but the newest `keep`."""
    root = checkpoint_root(output_dir)
    final = root / f"step-{step:08d}"
    tmp = root / f".tmp-step-{step:08d}-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_trainable(model, tmp, run_args, include_frozen=include_frozen)
    torch.save(optimizer.state_dict(), tmp / "optimizer.pt")
    torch.save(scheduler.state_dict(), tmp / "scheduler.pt")
    if scaler is not None:
        torch.save(scaler.state_dict(), tmp / "scaler.pt")
    tensors, plain = rng_state()
    save_file(tensors, str(tmp / "rng.safetensors"))
    (tmp / "rng.json").write_text(json.dumps(plain))
    (tmp / "state.json").write_text(json.dumps(state))  # written last: marks completeness
    shutil.rmtree(final, ignore_errors=True)
    os.replace(tmp, final)
    for old in list_checkpoints(output_dir)[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def load_checkpoint(path: Path, model: nn.Module, optimizer, scheduler, scaler
                    ) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler, scaler and RNGs; return the loop's counters."""
    load_trainable(model, path)
    optimizer.load_state_dict(torch.load(path / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(path / "scheduler.pt", weights_only=True))
    if scaler is not None and (path / "scaler.pt").is_file():
        scaler.load_state_dict(torch.load(path / "scaler.pt", weights_only=True))
    set_rng_state(load_file(str(path / "rng.safetensors")),
                  json.loads((path / "rng.json").read_text()))
    return json.loads((path / "state.json").read_text())


# options that may change between a run and its resumption
RESUME_FREE = {"resume", "progress", "save_every_steps", "keep_checkpoints"}


class ResumeError(ValueError):
    """A checkpoint that does not belong to this command."""


def check_resumable(path: Path, current: dict[str, Any]) -> None:
    """Refuse to resume from a checkpoint saved with other options (say which differ)."""
    saved = load_run_args(path)
    changed = {k: (saved.get(k), v) for k, v in current.items()
               if k not in RESUME_FREE and saved.get(k) != v}
    if changed:
        listing = ", ".join(f"--{k.replace('_', '-')} {old!r} -> {new!r}"
                            for k, (old, new) in changed.items())
        raise ResumeError(f"cannot resume from {path}: options differ from the saved run "
                          f"({listing}); rerun with the original options or another --output-dir")
