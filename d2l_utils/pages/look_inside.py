"""Look inside a model before it trains: attention maps, what has `requires_grad`, where a
method's tensors sit and what shape they have. Used by the chapters' "look inside" cells, which
run on the tiny model in seconds in every profile.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn


def plot_attention(weights: torch.Tensor, tokens: Sequence[str], title: str = "",
                   valid_len: int | None = None) -> plt.Figure:
    """One head's attention weights as a heat map: a row per query, a column per key.

    With `valid_len`, a line marks where the padding starts.
    """
    weights = weights.detach().float().cpu()
    size = 0.3 * max(len(tokens), 6)
    fig, ax = plt.subplots(figsize=(size + 1.6, size))
    image = ax.imshow(weights, cmap="Blues", vmin=0)
    ax.set_xticks(range(weights.shape[1]), list(tokens)[:weights.shape[1]], rotation=90,
                  fontsize=8)
    ax.set_yticks(range(weights.shape[0]), list(tokens)[:weights.shape[0]], fontsize=8)
    ax.set(xlabel="key (attended to)", ylabel="query")
    if valid_len is not None and valid_len < weights.shape[1]:
        ax.axvline(valid_len - 0.5, color="C3", lw=1.5, ls="--")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="attention weight")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def module_group(name: str, depth: int = 2) -> str:
    """A parameter's module group: the layer index kept, the rest cut to `depth` parts after it.

    'bert.encoder.layer.11.attention.self.query.weight' -> 'encoder.layer.11.attention';
    prefixes that wrappers add (`base_model.model.`, `bert.`, `roberta.`) are dropped.
    """
    name = re.sub(r"^(base_model\.model\.)?", "", name)
    name = re.sub(r"^(bert|roberta|distilbert)\.", "", name)
    name = name.replace(".modules_to_save.default", "")
    parts = name.split(".")
    for i, part in enumerate(parts):
        if part.isdigit():
            return ".".join(parts[:i + 1 + depth - 1])
    return ".".join(parts[:depth])


def trainable_table(models: Mapping[str, nn.Module], depth: int = 2,
                    layers: Sequence[int] | None = None) -> pd.DataFrame:
    """Trainable / total parameters per module group, one column per model (method).

    `layers` keeps only those encoder layers' rows (the others look alike); peft's frozen copy
    of the head (`original_module`) is left out, as in `d2l_utils.methods.count_parameters`.
    """
    columns = {}
    for label, model in models.items():
        counts: dict[str, list[int]] = {}
        for name, param in model.named_parameters():
            if ".original_module." in name:
                continue
            group = module_group(name, depth)
            entry = counts.setdefault(group, [0, 0])
            entry[0] += param.numel() if param.requires_grad else 0
            entry[1] += param.numel()
        columns[label] = counts
    groups = list(dict.fromkeys(g for counts in columns.values() for g in counts))
    if layers is not None:
        keep = {str(i) for i in layers}
        groups = [g for g in groups
                  if not re.search(r"\.(\d+)(\.|$)", g) or re.search(r"\.(\d+)(\.|$)",
                                                                      g).group(1) in keep]
    rows = {g: {label: _fraction(counts.get(g)) for label, counts in columns.items()}
            for g in groups}
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "module (trainable / total)"
    return table


def _fraction(entry: list[int] | None) -> str:
    if entry is None:
        return ""
    trainable, total = entry
    return f"{trainable:,} / {total:,}" if trainable else f"0 / {total:,}"


def parameter_shapes(model: nn.Module, pattern: str) -> pd.DataFrame:
    """Name, shape, `requires_grad` and whether it is all zeros, for parameters matching
    `pattern` (a regular expression searched in the name)."""
    rows = [{"parameter": name, "shape": tuple(p.shape), "requires_grad": p.requires_grad,
             "all zeros": bool(torch.count_nonzero(p) == 0)}
            for name, p in model.named_parameters() if re.search(pattern, name)]
    return pd.DataFrame(rows).set_index("parameter")
