"""Save and reload a trained run: the run's options (JSON) and its trainable weights (safetensors).

Only parameters that trained are written (for LoRA, a few hundred KB instead of the backbone);
the frozen rest is rebuilt from the backbone, exactly as the run built it. Loading never executes
code: safetensors holds tensors only. A file that cannot be read (truncated, not safetensors, not
JSON) is a `SavedRunError` naming it, and one that cannot be written (a full disk) a `WriteError`
naming it and the free space, never a library traceback.
"""

from __future__ import annotations

import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch
import torch.nn as nn
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..methods import counted_parameters

WEIGHTS_FILE = "trainable_weights.safetensors"
RUN_FILE = "run_args.json"


class SavedRunError(ValueError):
    """A saved run or checkpoint file that cannot be used; the message names the file."""


class WriteError(OSError):
    """A run's file that could not be written (a full disk, say); names the file and the free
    space. The partial file is gone."""

    def __str__(self) -> str:  # OSError would prefix an errno
        return self.args[0]


def free_space(path: str | os.PathLike) -> str:
    """The free space on the disk holding `path` (or its nearest existing parent), as 'N MiB'."""
    folder = Path(path).absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return f"{shutil.disk_usage(folder).free / 2**20:.1f} MiB"


def first_line(err: BaseException) -> str:
    """The first line of an error's message (its type when it has none), at most 200 chars."""
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


@contextmanager
def writing(path: str | os.PathLike) -> Iterator[None]:
    """Turn a failed write of `path` (an `OSError`, or the error safetensors or torch raise for
    one) into a `WriteError` naming the file and the free space; the partial file is removed."""
    try:
        yield
    except WriteError:
        raise
    except (OSError, SafetensorError, RuntimeError) as err:
        reason = err.strerror if isinstance(err, OSError) and err.strerror else first_line(err)
        Path(path).unlink(missing_ok=True)
        raise WriteError(f"cannot write {path} ({reason}); {free_space(path)} free on its "
                         "disk") from None


def save_tensors(tensors: dict[str, torch.Tensor], path: str | os.PathLike,
                 metadata: dict[str, str] | None = None) -> None:
    """`safetensors.torch.save_file`, with the permissions of any other file of a run folder
    (safetensors creates its files 0600, the others are 0644 under the usual umask)."""
    with writing(path):
        save_file(tensors, str(path), metadata=metadata)
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(path, 0o666 & ~mask)


def write_text_atomic(path: Path, text: str) -> None:
    """Write a small text file under a temporary name, then rename it into place."""
    tmp = path.with_name(path.name + ".tmp")
    with writing(tmp):
        tmp.write_text(text)
    os.replace(tmp, path)


def weights_bytes(model: nn.Module, include_frozen: bool = False) -> int:
    """Size of the weights `save_trainable` writes (all of them with `include_frozen`)."""
    return sum(p.numel() * p.element_size() for _, p in counted_parameters(model)
               if include_frozen or p.requires_grad)


def trainable_state_dict(model: nn.Module, include_frozen: bool = False) -> dict:
    """Detached CPU copies of the parameters that require gradients (or of all of them)."""
    return {name: param.detach().cpu().contiguous()
            for name, param in counted_parameters(model) if include_frozen or param.requires_grad}


def save_trainable(model: nn.Module, output_dir: str | os.PathLike, run_args: dict,
                   include_frozen: bool = False) -> Path:
    """Write the trainable weights and the run's resolved options into `output_dir`.

    `include_frozen` also writes the frozen weights: needed when the backbone was randomly
    initialised, since it cannot be rebuilt from anywhere else.
    """
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / (WEIGHTS_FILE + ".tmp")
    save_tensors(trainable_state_dict(model, include_frozen), tmp,
                 metadata={"format": "pt", "contents": "all" if include_frozen else "trainable"})
    os.replace(tmp, out / WEIGHTS_FILE)
    write_text_atomic(out / RUN_FILE, json.dumps(run_args, indent=2) + "\n")
    return out / WEIGHTS_FILE


def read_tensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """(tensors, metadata) of a safetensors file; an unreadable file is a `SavedRunError`."""
    if not path.is_file():
        raise FileNotFoundError(f"{path}: missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, handle.metadata() or {}
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise SavedRunError(f"{path}: cannot be read as safetensors ({first_line(err)}); the "
                            "file is truncated or not a saved weights file") from None


def read_trainable(model: nn.Module, checkpoint_dir: str | os.PathLike
                   ) -> dict[str, torch.Tensor]:
    """The saved trainable weights of a run, checked to fit `model` (nothing is loaded yet)."""
    path = Path(checkpoint_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved weights (was the run started with "
                                f"--no-save-model, or did it not finish?)")
    state, metadata = read_tensors(path)
    expected = trainable_state_dict(model, include_frozen=metadata.get("contents") == "all")
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise SavedRunError(f"{path} does not match the rebuilt model (missing {missing[:3]}, "
                            f"unexpected {extra[:3]}); was it saved by another version, or "
                            "with other options?")
    if wrong := [name for name, tensor in state.items() if tensor.shape != expected[name].shape]:
        raise SavedRunError(f"{path}: {wrong[0]} has shape {tuple(state[wrong[0]].shape)}, the "
                            f"rebuilt model {tuple(expected[wrong[0]].shape)}; was it saved "
                            "with other options?")
    return state


def load_run_args(checkpoint_dir: str | os.PathLike) -> dict:
    """The resolved options a run was trained with."""
    path = Path(checkpoint_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no {RUN_FILE}); pass the "
                                "--output-dir of a finished `train` run")
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError) as err:  # UnicodeDecodeError and JSONDecodeError are both
        raise SavedRunError(f"{path}: cannot be read as JSON ({err}); the run's options are "
                            "lost, train it again") from None
    if not isinstance(saved, dict) or "task" not in saved:
        raise SavedRunError(f"{path}: not the options of a run (no task in it)")
    return saved
