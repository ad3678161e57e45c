"""Prefix tuning (Li & Liang, 2021): per-layer key/value prefixes produced by an MLP."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import AT_LEAST_1, MethodConfig, option, prompt_shape, register, train_adapter

if TYPE_CHECKING:
    import torch.nn as nn


@register
@dataclass
class PrefixConfig(MethodConfig):
    """Prefix tuning: per-layer key/value prefixes produced by an MLP from `prefix_length`
    embeddings (the reparametrization of Li & Liang, 2021); `bottleneck_size` is the MLP's
    hidden size (512: the adapters library's default, as in the MNLI seed)."""

    name: ClassVar[str] = "prefix"
    default_lr: ClassVar[float] = 1e-4  # the MNLI seed's; 5e-4 collapsed on SST-2 (MiniLM)
    backends: ClassVar[tuple[str, ...]] = ("adapters", "peft")
    backend: str = "adapters"  # type: ignore[assignment]
    prefix_length: int = option(30, "prefix: number of prefix vectors", bounds=AT_LEAST_1)
    bottleneck_size: int = 512

    def apply(self, model: nn.Module) -> nn.Module:
        if self.backend == "adapters":
            from adapters import PrefixTuningConfig

            adapter = PrefixTuningConfig(prefix_length=self.prefix_length, flat=False,
                                         bottleneck_size=self.bottleneck_size)
            return train_adapter(model, "prefix", adapter)
        from peft import PrefixTuningConfig, TaskType, get_peft_model

        return get_peft_model(model, PrefixTuningConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=self.prefix_length,
            prefix_projection=True, encoder_hidden_size=self.bottleneck_size,
            **prompt_shape(model)))
