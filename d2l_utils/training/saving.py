"""Save and reload a trained run: the run's options (JSON) and its trainable weights (safetensors).

Only parameters that trained are written (for LoRA, a few hundred KB instead of the backbone);
the frozen rest is rebuilt from the backbone, exactly as the run built it. Loading never executes
code: safetensors holds tensors only.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from ..methods import counted_parameters

WEIGHTS_FILE = "trainable_weights.safetensors"
RUN_FILE = "run_args.json"


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
    contents = "all" if include_frozen else "trainable"
    save_file(trainable_state_dict(model, include_frozen), str(tmp),
              metadata={"format": "pt", "contents": contents})
    os.replace(tmp, out / WEIGHTS_FILE)
    (out / RUN_FILE).write_text(json.dumps(run_args, indent=2) + "\n")
    return out / WEIGHTS_FILE


def load_trainable(model: nn.Module, checkpoint_dir: str | os.PathLike) -> nn.Module:
    """Load saved trainable weights into a freshly built model; every saved tensor must fit."""
    path = Path(checkpoint_dir) / WEIGHTS_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no saved weights (was the run started with "
                                f"--no-save-model, or did it not finish?)")
    with safe_open(str(path), framework="pt") as handle:
        contents = (handle.metadata() or {}).get("contents", "trainable")
    state = load_file(str(path))
    expected = set(trainable_state_dict(model, include_frozen=contents == "all"))
    if set(state) != expected:
        missing, extra = sorted(expected - set(state)), sorted(set(state) - expected)
        raise ValueError(f"{path} does not match the rebuilt model (missing {missing[:3]}, "
                         f"unexpected {extra[:3]}); was it saved by another version?")
    model.load_state_dict(state, strict=False)
    return model


def load_run_args(checkpoint_dir: str | os.PathLike) -> dict:
    """The resolved options a run was trained with."""
    path = Path(checkpoint_dir) / RUN_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not a run directory (no {RUN_FILE}); pass the "
                                "--output-dir of a finished `train` run")
    return json.loads(path.read_text())
