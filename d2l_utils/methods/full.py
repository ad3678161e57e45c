"""Full fine-tuning: every parameter trains."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import MethodConfig, register

if TYPE_CHECKING:
    import torch.nn as nn


@register
@dataclass
class FullConfig(MethodConfig):
    """Full fine-tuning: every parameter trains."""

    name: ClassVar[str] = "full"

    def apply(self, model: nn.Module) -> nn.Module:
        return model.requires_grad_(True)
