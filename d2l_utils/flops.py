"""Training FLOPs of an encoder (its parameter count per token and the factor k per method), the
GPUs' datasheet peaks, and the committed GPU check's results.

Shared by the time estimate (`d2l_utils.pages.time_budget`) and the GPU check's MFU
(`benchmarks/gpu_check.py`). Shapes come from the configs shipped in `d2l_utils/configs` and from
d2l's own BERTs (chapter 1); nothing is downloaded or built.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, NamedTuple

from .backbones import CONFIG_DIR

FULL, FREEZE = "full", "freeze"
FROZEN_BACKBONE = ("bitfit", "lora", "prefix", "ptuning-v2", "prompt-tuning")
# Dense bf16/fp16 tensor-core peaks (FLOP/s) from the vendors' datasheets; first match wins.
PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    (r"H100.*PCIe", 756e12), (r"H100", 989e12), (r"H200", 989e12), (r"A100", 312e12),
    (r"\bT4\b", 65e12), (r"\bL4\b", 121e12), (r"\bA10\b", 125e12),
    (r"(?i)titan rtx", 130e12),  # the run_glue README's GPU (the T4 estimate's anchor)
)
GPU_CHECK_JSON = "gpu_check.json"
# Where a GPU run of benchmarks/gpu_check.py leaves its results (in a source checkout).
GPU_CHECK_PATH = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu" / GPU_CHECK_JSON


class Shape(NamedTuple):
    """An encoder stack's layers, hidden size and feed-forward size."""

    layers: int
    hidden: int
    intermediate: int


def load_backbone(model: str) -> Shape:
    """The shape of a shipped config (`d2l_utils/configs`); d2l's own BERTs (chapter 1) are
    `d2l_utils.pages.time_budget.backbone_shape`'s, since the pipeline never imports scratch/."""
    config = json.loads((CONFIG_DIR / f"{model}.json").read_text(encoding="utf-8"))
    if config.get("model_type") == "distilbert":
        return Shape(config["n_layers"], config["dim"], config["hidden_dim"])
    return Shape(config["num_hidden_layers"], config["hidden_size"], config["intermediate_size"])


def encoder_params(shape: Shape) -> int:
    """N = L (4h^2 + 2hi + 9h + i): attention, feed-forward and LayerNorm parameters, the ones
    every token passes through (d2l's attention has no biases, 4h fewer: ignored)."""
    h, i = shape.hidden, shape.intermediate
    return shape.layers * (4 * h * h + 2 * h * i + 9 * h + i)


def k_factor(method: str, layers: int, trainable_layers: int = 0) -> float:
    """Training FLOPs per token per backbone parameter.

    6 for full fine-tuning (forward 2, backward 4); 4 for a frozen backbone that still
    back-propagates through every layer; 2 + 4 * T / L when only the last T of L layers train
    (2, the forward pass alone, for the head-only baseline, T = 0).
    """
    if method == FULL:
        return 6.0
    if method == FREEZE:
        if not 0 <= trainable_layers <= layers:
            raise ValueError(f"trainable_layers must be in 0..{layers}, got {trainable_layers}")
        return 2.0 + 4.0 * trainable_layers / layers
    if method in FROZEN_BACKBONE:
        return 4.0
    raise ValueError(f"unknown method {method!r}; known: {FULL}, {FREEZE}, "
                     + ", ".join(FROZEN_BACKBONE))


def datasheet_peak_for(name: str) -> float | None:
    """The dense bf16/fp16 peak in `PEAK_FLOPS` of the GPU called `name`, if it is there."""
    return next((peak for pattern, peak in PEAK_FLOPS if re.search(pattern, name)), None)


def load_gpu_check(path: str | Path | None = None, require_gpu: bool = True
                   ) -> dict[str, Any] | None:
    """The JSON of a `benchmarks/gpu_check.py` run (default: the committed GPU run), or None
    when there is none, so a book page shows measured GPU numbers only when they exist.
    With `require_gpu`, a CPU run's file counts as none."""
    path = Path(path) if path is not None else GPU_CHECK_PATH
    path = path / GPU_CHECK_JSON if path.is_dir() else path
    if not path.is_file():
        return None
    summary = json.loads(path.read_text())
    return summary if summary.get("device") == "cuda" or not require_gpu else None
