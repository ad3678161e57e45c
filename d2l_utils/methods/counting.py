"""Which parameters are the head's, how the head trains, and the counts the chapters report."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import HeadMode, PoolerMode

if TYPE_CHECKING:
    import torch.nn as nn

HEAD_MARKERS = ("classifier.", "pre_classifier.", "heads.")


def is_head_parameter(name: str) -> bool:
    """True for parameters of the classification head (HF, peft-wrapped or `adapters` head)."""
    return any(name.startswith(m) or f".{m}" in name for m in HEAD_MARKERS)


def is_head_or_pooler(name: str) -> bool:
    """True for the head and BERT's pooler (`bert.pooler.dense.*`, peft-wrapped too): what sits
    on top of the encoder, counted and clipped together."""
    return is_head_parameter(name) or ".pooler." in f".{name}"


def counted_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """(name, parameter) pairs used in the forward pass.

    peft keeps a frozen copy of the head (`original_module`) beside the trained one
    (`modules_to_save`); the copy is skipped so totals match the architecture.
    """
    return [(n, p) for n, p in model.named_parameters() if ".original_module." not in n]


def set_head_mode(model: nn.Module, mode: HeadMode) -> None:
    """Make the head train fully (`train`), only its biases (`bias`), or not at all."""
    for name, param in counted_parameters(model):
        if is_head_parameter(name):
            param.requires_grad = mode == "train" or (mode == "bias" and name.endswith("bias"))


def set_pooler_mode(model: nn.Module, mode: PoolerMode | None) -> None:
    """Make BERT's pooler train or not (None: leave it as the method set it)."""
    pooler = next((m for name, m in model.named_modules() if name.rsplit(".", 1)[-1] == "pooler"
                   and m is not None and any(True for _ in m.parameters())), None)
    if mode is not None and pooler is not None:  # (peft wraps the model: search by name)
        pooler.requires_grad_(mode == "train")


def count_parameters(model: nn.Module) -> dict[str, int | float]:
    """Total and trainable parameters, with the trainable ones split into the method's own and
    the head's (with BERT's pooler when it trains)."""
    total = trainable = head = 0
    for name, param in counted_parameters(model):
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
            head += param.numel() if is_head_or_pooler(name) else 0
    return {"total": total, "trainable": trainable, "method_params": trainable - head,
            "head_params": head, "trainable_percent": round(100 * trainable / total, 4)}
