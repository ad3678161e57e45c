"""Look inside a model before it trains: attention maps, what has `requires_grad`, where a
method's tensors sit and their shapes. The chapters' "look inside" cells use it on the tiny
model, in seconds in every profile."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd
import torch
from torch import nn


def plot_attention(weights: torch.Tensor, tokens: Sequence[str], title: str = "",
                   valid_len: int | None = None) -> plt.Figure:
    """One head's attention weights as a heat map: a row per query, a column per key; with
    `valid_len`, a line marks where the padding starts."""
    weights = weights.detach().float().cpu()
    size = 0.3 * max(len(tokens), 6)
    fig, ax = plt.subplots(figsize=(size + 1.6, size))
    image = ax.imshow(weights, cmap="Blues", vmin=0)
    ax.set_xticks(range(weights.shape[1]), list(tokens)[:weights.shape[1]], rotation=90, fontsize=8)
    ax.set_yticks(range(weights.shape[0]), list(tokens)[:weights.shape[0]], fontsize=8)
    ax.set(xlabel="key (attended to)", ylabel="query")
    if valid_len is not None and valid_len < weights.shape[1]:
        ax.axvline(valid_len - 0.5, color="C3", lw=1.5, ls="--")
    fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02, label="attention weight")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return fig


def tiny_model(task: str, method: str, **options) -> nn.Module:
    """`build_model` on the tiny 2-layer BERT (hidden 64, 2 heads, random weights) with `method`
    applied exactly as for training; seeded, in eval mode (no dropout)."""
    from ..backbones import resolve_backbone
    from ..methods import build_model, method_config
    from ..tasks import get_task

    torch.manual_seed(0)
    model = build_model(resolve_backbone("tiny-bert"), get_task(task),
                        method_config(method, **options))
    return model.eval()


def tiny_batch(task: str, n: int = 2) -> dict[str, torch.Tensor]:
    """The first `n` training examples of `task`'s fixtures as the tiny model's input: tokenized,
    padded to the longest, with `labels`."""
    from ..backbones import load_config, load_tokenizer, resolve_backbone
    from ..data import load_task_data
    from ..tasks import get_task

    spec = get_task(task)
    backbone = resolve_backbone("tiny-bert")
    tokenizer = load_tokenizer(backbone, load_config(backbone, spec))
    examples = load_task_data(spec, tiny=True)["train"].select(range(n))
    batch = tokenizer(*[list(examples[key]) for key in spec.text_keys], padding=True,
                      return_tensors="pt")
    dtype = torch.float if spec.is_regression else torch.long
    batch["labels"] = torch.tensor(list(examples["label"]), dtype=dtype)
    return dict(batch)


def _short(name: str) -> str:
    """A parameter name without the prefixes wrappers add (`base_model.model.`, `bert.`)."""
    return re.sub(r"^(base_model\.model\.)?(bert|roberta|distilbert)\.", "", name)


def module_group(name: str) -> str:
    """A parameter's module, coarse enough for a table: `embeddings`, `encoder.layer.3.attention`,
    `pooler`, `classifier`; the prefixes that wrappers add (`base_model.model.`, `bert.`) are
    dropped. Prefix-tuning pools and prompt encoders are groups of their own."""
    if "prefix_tuning" in name:
        return "prefix_tuning (shared by all layers)"
    short = re.sub(r"^base_model\.model\.", "", _short(name))
    layer = re.match(r"(?:.*?\.)?layer\.\d+(?:$|\.[^.]+)", short)  # to the module in a layer
    return layer.group(0) if layer else short.split(".")[0]


def trainable_table(models: Mapping[str, nn.Module]) -> pd.DataFrame:
    """Trainable / total parameters per module, one column per model (method); peft's frozen
    copy of the head (`original_module`) is left out, as in `methods.count_parameters`."""
    rows = [(module_group(name), label, p.numel() * p.requires_grad, p.numel())
            for label, model in models.items() for name, p in model.named_parameters()
            if ".original_module." not in name]
    sums = (pd.DataFrame(rows, columns=["module", "model", "trainable", "total"])
            .groupby(["module", "model"], sort=False).sum())
    cells = sums["trainable"].map("{:,}".format) + " / " + sums["total"].map("{:,}".format)
    return (cells.unstack(fill_value="")
            .reindex(index=list(dict.fromkeys(sums.index.get_level_values(0))),
                     columns=list(models))
            .rename_axis(index="module: trainable / total", columns=None))


def parameter_shapes(model: nn.Module, pattern: str) -> pd.DataFrame:
    """Name, shape, `requires_grad` and whether it is all zeros, for parameters matching
    `pattern` (a regular expression searched in the name)."""
    rows = [{"parameter": _short(name), "shape": tuple(p.shape),
             "requires_grad": p.requires_grad, "all zeros": bool(torch.count_nonzero(p) == 0)}
            for name, p in model.named_parameters() if re.search(pattern, name)]
    return pd.DataFrame(rows).set_index("parameter")


def prefix_shapes(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> pd.DataFrame:
    """Per layer: the prefix keys and values a prefix method adds, the keys attention then
    sees, and the attention mask, measured by running the model on `batch`.

    Works for peft's prefix tuning and P-Tuning v2 (prompts passed as past keys and values) and
    for the `adapters` library's prefix tuning (prompts concatenated inside each attention)."""
    layers = []  # per layer: prefix keys, prefix values, keys in attention, attention mask
    if hasattr(model, "get_prompt"):  # peft
        from transformers.utils import logging as hf_logging

        mask = tuple(encoder_inputs(model, batch)["attention_mask"].shape)
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # not the note that attention falls back to eager
        try:
            with torch.no_grad():
                out = model(**batch, output_attentions=True)
                cache = model.get_prompt(batch_size=batch["input_ids"].shape[0])
        finally:
            hf_logging.set_verbosity(verbosity)
        for (keys, values), attention in zip(cache, out.attentions):
            b, h, _, d = keys.shape
            layers.append((tuple(keys.shape), tuple(values.shape),
                           (b, h, attention.shape[-1], d), mask))
    else:  # the adapters library
        from adapters.methods.prefix_tuning import PrefixTuningLayer

        seen_layers: list[list[tuple]] = []  # (input, keys, values, mask) shapes per layer
        hooks = [m.register_forward_hook(lambda module, args, out: seen_layers.append(
            [tuple(x.shape) for x in (args[0], *out[:3])]))
            for m in model.modules() if isinstance(m, PrefixTuningLayer)]
        try:
            with torch.no_grad():
                model(**batch)
        finally:
            for hook in hooks:
                hook.remove()
        for before, (b, h, k, d), values, mask in seen_layers:
            layers.append(((b, h, k - before[2], d), (b, h, values[2] - before[2], values[3]),
                           (b, h, k, d), mask))
    table = pd.DataFrame(layers, columns=["prefix keys", "prefix values", "keys in attention",
                                          "attention mask"])
    return table.assign(**{"input length": batch["input_ids"].shape[1]}).rename_axis("layer")


def encoder_inputs(model: nn.Module, batch: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors the encoder itself (`BertModel`) receives when a peft-wrapped classifier runs
    on `batch`: for prompt tuning, `inputs_embeds` with the prompt in front, the longer
    `attention_mask` and `token_type_ids`."""
    seen: dict[str, torch.Tensor] = {}
    encoder = model.get_base_model().base_model  # BertModel: what peft calls with the prompts
    with encoder.register_forward_pre_hook(  # a handle that removes the hook on leaving
            lambda module, args, kwargs: seen.update(
                {k: v for k, v in kwargs.items() if isinstance(v, torch.Tensor)}),
            with_kwargs=True), torch.no_grad():
        model(**batch)
    return seen
