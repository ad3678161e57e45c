"""LoRA written by hand (Hu et al., 2021): a frozen linear layer plus a trainable low-rank
update. Chapter 5 writes it out and checks it against peft's `lora.Linear`; the training
pipeline uses peft's or the `adapters` library's layer, never this one."""

from __future__ import annotations

import torch
from torch import nn


class LoRALinear(nn.Module):
    """`base(x) + (alpha / r) * B(A(dropout(x)))`: `base` frozen, A (r x d_in) and B (d_out x r)
    trained. B starts at zero, so the layer starts as exactly `base`."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        super().__init__()
        self.base, self.scaling = base.requires_grad_(False), alpha / r
        self.lora_A = nn.Linear(base.in_features, r, bias=False)  # Kaiming-uniform, as peft
        self.lora_B = nn.Linear(r, base.out_features, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.base(x) + self.scaling * self.lora_B(self.lora_A(self.dropout(x)))

    def merge(self) -> nn.Linear:
        """One plain linear layer with weight W + (alpha / r) B A: the same outputs, no LoRA."""
        merged = nn.Linear(self.base.in_features, self.base.out_features,
                           bias=self.base.bias is not None)
        with torch.no_grad():
            merged.weight.copy_(self.base.weight
                                + self.scaling * self.lora_B.weight @ self.lora_A.weight)
            if self.base.bias is not None:
                merged.bias.copy_(self.base.bias)
        return merged
