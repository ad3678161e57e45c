"""LoRA (Hu et al., 2021): low-rank matrices beside the attention projections, with `peft` or
`adapters`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from .base import AT_LEAST_1, Bounds, MethodConfig, MethodError, option, register, train_adapter

if TYPE_CHECKING:
    import torch.nn as nn

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
    backend: str = "peft"  # type: ignore[assignment]
    r: int = option(8, "lora: rank", bounds=AT_LEAST_1, known_as=("lora_r", "rank"))
    alpha: int = option(16, "lora: scaling alpha (scale = alpha / r)", bounds=AT_LEAST_1,
                        known_as=("lora_alpha",))
    dropout: float = option(0.1, "lora: dropout on the LoRA input",
                            bounds=Bounds(0, 1, open_high=True), known_as=("lora_dropout",))
    target_modules: list[str] = option(["query", "value"],
                                       "lora: projections that get LoRA matrices", nonempty=True)

    def validate(self) -> None:
        super().validate()
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
