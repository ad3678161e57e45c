"""BitFit (Ben Zaken et al., 2022): only the bias terms train."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import HeadMode, MethodConfig, register

if TYPE_CHECKING:
    import torch.nn as nn


@register
@dataclass
class BitFitConfig(MethodConfig):
    """BitFit: only bias terms train. The head trains its biases only, as in the CoLA/STS-B seed
    (pass head="train" to also train the head's weights, as the BitFit paper does)."""

    name: ClassVar[str] = "bitfit"
    default_lr: ClassVar[float] = 1e-3
    default_head: ClassVar[HeadMode] = "bias"

    def apply(self, model: nn.Module) -> nn.Module:
        for name, param in model.named_parameters():
            param.requires_grad = name.endswith("bias")
        return model
