"""Freezing: only the last encoder layers, the pooler and the head train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import AT_LEAST_0, MethodConfig, MethodError, option, register

if TYPE_CHECKING:
    import torch.nn as nn


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a BERT, RoBERTa or DistilBERT classifier."""
    from torch.nn import ModuleList

    base = model.base_model
    for path in ("encoder.layer", "transformer.layer"):
        module = base
        for attr in path.split("."):
            module = getattr(module, attr, None)
        if isinstance(module, ModuleList):
            return module
    raise MethodError(f"cannot find the encoder layers of {type(model).__name__}")


@register
@dataclass
class FreezeConfig(MethodConfig):
    """Freezing: only the last `trainable_layers` encoder layers, the pooler and the head train."""

    name: ClassVar[str] = "freeze"
    default_lr: ClassVar[float] = 1e-4
    trainable_layers: int = option(1, "freeze: encoder layers left trainable", bounds=AT_LEAST_0)

    def apply(self, model: nn.Module) -> nn.Module:
        layers = encoder_layers(model)
        if self.trainable_layers > len(layers):
            raise MethodError(f"--trainable-layers {self.trainable_layers}: the model has only "
                              f"{len(layers)} encoder layers")
        model.requires_grad_(False)
        pooler = getattr(model.base_model, "pooler", None)
        for module in [*list(layers)[len(layers) - self.trainable_layers:], pooler]:
            if module is not None:
                module.requires_grad_(True)
        return model
