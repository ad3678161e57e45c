"""Virtual-token prompts with peft: deep prompts at every layer (P-Tuning v2, Liu et al., 2022)
and a shallow soft prompt on the input only (prompt tuning, Lester et al., 2021)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import AT_LEAST_1, MethodConfig, option, prompt_shape, register

if TYPE_CHECKING:
    import torch.nn as nn


@dataclass
class _PromptConfig(MethodConfig):
    """What both prompt methods share: peft, and the number of virtual tokens."""

    backends: ClassVar[tuple[str, ...]] = ("peft",)
    num_virtual_tokens: int = option(20, "ptuning-v2 / prompt-tuning: prompt length",
                                     bounds=AT_LEAST_1)


@register
@dataclass
class PTuningV2Config(_PromptConfig):
    """P-Tuning v2: trainable key/value prompts at every layer, no reparametrization."""

    name: ClassVar[str] = "ptuning-v2"
    default_lr: ClassVar[float] = 5e-3

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import PrefixTuningConfig, TaskType, get_peft_model

        return get_peft_model(model, PrefixTuningConfig(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=self.num_virtual_tokens,
            prefix_projection=False, **prompt_shape(model)))


@register
@dataclass
class PromptTuningConfig(_PromptConfig):
    """Prompt tuning: a shallow soft prompt prepended to the input embeddings only."""

    name: ClassVar[str] = "prompt-tuning"
    default_lr: ClassVar[float] = 1e-2

    def apply(self, model: nn.Module) -> nn.Module:
        from peft import PromptTuningConfig as PeftPromptTuning
        from peft import TaskType, get_peft_model

        return get_peft_model(model, PeftPromptTuning(
            task_type=TaskType.SEQ_CLS, num_virtual_tokens=self.num_virtual_tokens,
            **prompt_shape(model)))
