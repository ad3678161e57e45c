"""Virtual-token prompts with peft: deep prompts at every layer (P-Tuning v2, Liu et al., 2022)
and a shallow soft prompt on the input only (prompt tuning, Lester et al., 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn as nn

from .base import MethodConfig, prompt_shape, register


@register
@dataclass
class PTuningV2Config(MethodConfig):
    """P-Tuning v2: trainable key/value prompts at every layer, no reparametrization."""

    name: ClassVar[str] = "ptuning-v2"
    default_lr: ClassVar[float] = 5e-3
    backends: ClassVar[tuple[str, ...]] = ("peft",)
    positive_options: ClassVar[tuple[str, ...]] = ("num_virtual_tokens",)
    num_virtual_tokens: int = 20

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import PrefixTuningConfig, TaskType, get_peft_model

        return get_peft_model(model, PrefixTuningConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=self.num_virtual_tokens,
            prefix_projection=False, **prompt_shape(model)))


@register
@dataclass
class PromptTuningConfig(MethodConfig):
    """Prompt tuning: a shallow soft prompt prepended to the input embeddings only."""

    name: ClassVar[str] = "prompt-tuning"
    default_lr: ClassVar[float] = 1e-2
    backends: ClassVar[tuple[str, ...]] = ("peft",)
    positive_options: ClassVar[tuple[str, ...]] = ("num_virtual_tokens",)
    num_virtual_tokens: int = 20

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import PromptTuningConfig as PeftPromptTuning
        from peft import TaskType, get_peft_model

        return get_peft_model(model, PeftPromptTuning(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=self.num_virtual_tokens,
            **prompt_shape(model)))
