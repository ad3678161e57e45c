"""Gradient clipping by parameter group, so a large head gradient does not starve the method.

One global norm over all trainable parameters lets the group with the largest gradient set the
scale of every step. On STS-B (a regression on scores 0-5, MiniLM-L6) the freshly initialised
head's gradient norm is about 8 and the untrained pooler's about 13, while LoRA's is 0.4 and
BitFit's 1.2: clipping the total to 1.0 divides the method's gradients by 8-15 whenever the
head (or pooler) is still far off, i.e. for as long as the regression has not been learnt,
and weights each batch by how wrong the head is on it rather than by what the method can learn
from it. So the library clips the groups separately, each to `max_grad_norm`:

- `head`: the classification head (`is_head_parameter`) and BERT's pooler when it trains: the
  layers on top of the encoder that start untrained (the pooler is not counted as head by the
  parameter tables, but for clipping it is one: RoBERTa's head contains the same dense layer);
- `method`: everything else that trains (LoRA matrices, biases, prefix, the encoder).

The loop (`Loop.train_step`) uses it; the transformers `Trainer` (`--trainer hf`) clips one
global norm and cannot do per-group clipping without a subclass, and neither can fastNLP's
`TorchGradClipCallback`: there `--max-grad-norm` means the global norm.
"""

from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn as nn

from ..methods.counting import is_head_or_pooler


def clip_groups(model: nn.Module) -> dict[str, list[nn.Parameter]]:
    """The trainable parameters as {"head": [...], "method": [...]} (empty groups left out)."""
    groups: dict[str, list[nn.Parameter]] = {"head": [], "method": []}
    for name, param in model.named_parameters():
        if param.requires_grad:
            groups["head" if is_head_or_pooler(name) else "method"].append(param)
    return {name: params for name, params in groups.items() if params}


def clip_by_group_(groups: dict[str, list[nn.Parameter]], max_norm: float,
                   unscale: Callable[[], Any] | None = None) -> dict[str, torch.Tensor]:
    """Clip each group's gradients to total norm `max_norm`, independently; returns each
    group's norm before clipping. `unscale` runs first (fp16: the gradient scaler's
    `unscale_`, which must run once per step)."""
    if unscale is not None:
        unscale()
    return {name: torch.nn.utils.clip_grad_norm_(params, max_norm)
            for name, params in groups.items()}


def clipping_note(trainer: str, max_norm: float) -> str:
    """What `--max-grad-norm` did in a run, for its record: the library loop clips the head (with
    the pooler) and the method apart, the Trainer and fastNLP one global norm."""
    if not max_norm:
        return "off (--max-grad-norm 0)"
    if trainer == "loop":
        return f"per group: head (with the pooler) and method, each to norm {max_norm:g}"
    return f"one global norm {max_norm:g} over all trainable parameters ({trainer} trainer)"
