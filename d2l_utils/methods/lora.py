"""LoRA (Hu et al., 2021): low-rank matrices beside the attention projections, with `peft` or
`adapters`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import torch.nn as nn

from .base import MethodConfig, MethodError, register, train_adapter

# the adapters library names the attention matrices by one letter
ADAPTERS_MATRICES = {"query": "q", "key": "k", "value": "v"}


@register
@dataclass
class LoraConfig(MethodConfig):
    """LoRA: low-rank matrices A (r x d) and B (d x r) beside the `target_modules` projections;
    the update B A x is scaled by alpha / r."""

    name: ClassVar[str] = "lora"
    default_lr: ClassVar[float] = 4e-4
    backends: ClassVar[tuple[str, ...]] = ("peft", "adapters")
    positive_options: ClassVar[tuple[str, ...]] = ("r", "alpha")
    backend: str = "peft"  # type: ignore[assignment]
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")

    def validate(self) -> None:
        super().validate()
        if not 0 <= self.dropout < 1:
            raise MethodError(f"--dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise MethodError("--target-modules needs at least one module name")
        if self.backend == "adapters":
            unknown = set(self.target_modules) - set(ADAPTERS_MATRICES)
            if unknown:
                raise MethodError(f"--target-modules {sorted(unknown)} not supported by the "
                                  f"adapters backend; choose from {list(ADAPTERS_MATRICES)}")

    def apply(self, model: nn.Module) -> nn.Module:
        if self.backend == "adapters":
            from adapters import LoRAConfig

            adapter = LoRAConfig(r=self.r, alpha=self.alpha, dropout=self.dropout,
                                 selfattn_lora=True, intermediate_lora=False, output_lora=False,
                                 attn_matrices=[ADAPTERS_MATRICES[m]
                                                for m in self.target_modules])
            return train_adapter(model, "lora", adapter)
        from peft import LoraConfig as PeftLora
        from peft import TaskType, get_peft_model

        return get_peft_model(model, PeftLora(task_type=TaskType.SEQ_CLS, r=self.r,
                                              lora_alpha=self.alpha, lora_dropout=self.dropout,
                                              target_modules=list(self.target_modules)))
