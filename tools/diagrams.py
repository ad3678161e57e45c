"""The chapters' architecture figures, drawn with matplotlib alone (no external assets).

One function per figure, each returning a `Diagram` (a `Figure` Jupyter shows as SVG, also
without pyplot). `python tools/draw_figures.py` writes them, with the intro page's overview, into
`d2l_utils/figures/` as reproducible SVGs, which the package ships and the chapters show
(`d2l_utils.pages.figures.show_figure`): the drawing code runs here, not on a reader's machine.
Call a function with other sizes to see the figure for them (`lora(r=2)`).
Grey = frozen, orange = trainable, blue = inputs, activations.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from itertools import accumulate
from typing import Any

import matplotlib
import matplotlib.patches as mpatches
from matplotlib.figure import Figure

FROZEN, FROZEN_EDGE = "#d9d9d9", "#707070"
TRAINABLE, TRAINABLE_EDGE = "#f4a259", "#b5541c"
PARTIAL = "#fcdcb8"  # trains in part (one layer, the biases only)
DATA, DATA_EDGE = "#dce9f5", "#4a78a8"
PLAIN, PLAIN_EDGE = "#ffffff", "#707070"
INK, GREY = "#222222", "#555555"  # GREY: notes and subtitles

STYLES = {"frozen": (FROZEN, FROZEN_EDGE), "trainable": (TRAINABLE, TRAINABLE_EDGE),
          "partial": (PARTIAL, TRAINABLE_EDGE), "data": (DATA, DATA_EDGE),
          "plain": (PLAIN, PLAIN_EDGE)}
LEGEND_LABELS = {"frozen": "frozen", "trainable": "trainable", "partial": "trains in part",
                 "data": "input / activations", "plain": "no parameters"}

# Sizes of bert-base-uncased (hidden d, layers), and facts the figures print. The test suite
# checks the totals against `d2l_utils.methods.parameter_counts`.
HIDDEN, LAYERS = 768, 12
BERT_BASE_MNLI_TOTAL = 109_484_547  # full fine-tuning, 3-label linear head

SVG_RC = {"svg.fonttype": "none", "svg.hashsalt": "d2l-glue-figures"}


class Diagram(Figure):
    """A matplotlib figure that Jupyter displays as SVG: a bare `Figure` has no display
    formatter unless pyplot is imported, and shows as `<Figure size ...>`."""

    def _repr_svg_(self) -> str:
        buffer = io.StringIO()
        with matplotlib.rc_context(SVG_RC):
            self.savefig(buffer, format="svg")
        return buffer.getvalue()


def _canvas(width: float, height: float, title: str = "", subtitle: str = ""
            ) -> tuple[Figure, Any]:
    """A figure whose single axes fills it, with data units equal to inches; the title and
    subtitle, if any, at its top left."""
    fig = Diagram(figsize=(width, height))
    ax = fig.add_axes((0, 0, 1, 1))
    ax.set_xlim(0, width)
    ax.set_ylim(0, height)
    ax.set_axis_off()
    if title:
        ax.text(0.25, height - 0.15, title, fontsize=12, fontweight="bold", color=INK, va="top")
        ax.text(0.25, height - 0.45, subtitle, fontsize=9, color=GREY, va="top")
    return fig, ax


def _box(ax, x: float, y: float, w: float, h: float, text: str = "", style: str = "frozen",
         fontsize: float = 9, lw: float = 1.2) -> None:
    """A rounded box with centred text, coloured by `style` (a key of STYLES)."""
    face, edge = STYLES[style]
    ax.add_patch(mpatches.FancyBboxPatch((x, y), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                         facecolor=face, edgecolor=edge, linewidth=lw))
    if text:
        _text(ax, x + w / 2, y + h / 2, text, fontsize, color=INK)


def _arrow(ax, start: tuple[float, float], end: tuple[float, float], color: str = INK,
           lw: float = 1.1, style: str = "-|>", **kw) -> None:
    ax.add_patch(mpatches.FancyArrowPatch(start, end, arrowstyle=style, mutation_scale=10,
                                          color=color, linewidth=lw, shrinkA=0, shrinkB=0, **kw))


def _text(ax, x: float, y: float, text: str, size: float = 9, ha: str = "center",
          va: str = "center", **kw) -> None:
    """Text at (x, y), centred on it unless `ha` / `va` say otherwise."""
    ax.text(x, y, text, ha=ha, va=va, fontsize=size, **kw)


def _notes(ax, x: float, y: float, step: float, lines: list[tuple[str, str, str]]) -> None:
    """Lines of (text, font weight, colour) downwards from (x, y), `step` inches apart."""
    for i, (line, weight, color) in enumerate(lines):
        ax.text(x, y - step * i, line, fontsize=8.5, fontweight=weight, color=color, va="top")


def _legend(ax, styles: Iterable[str], labels: dict[str, str] | None = None, **kw) -> None:
    labels = {**LEGEND_LABELS, **(labels or {})}
    handles = [mpatches.Patch(facecolor=STYLES[s][0], edgecolor=STYLES[s][1], label=labels[s])
               for s in styles]
    ax.legend(handles=handles, **{"fontsize": 8.5, "frameon": False, **kw})


def bert_finetuning() -> Figure:
    """A premise-hypothesis pair through BERT's embeddings and encoder to a 3-class head."""
    fig, ax = _canvas(11, 7.6, "Fine-tuning BERT on a sentence pair (NLI)",
                      "full fine-tuning: the classification loss updates every orange part, all "
                      f"{BERT_BASE_MNLI_TOTAL:,} parameters of bert-base-uncased with a 3-label "
                      "head")
    widths = [0.9, 2.5, 0.9, 2.5, 0.9]
    xs = list(accumulate([w + 0.12 for w in widths[:-1]], initial=1.9))
    mids = [x + w / 2 for x, w in zip(xs, widths)]
    tokens = ["[CLS]", "premise tokens", "[SEP]", "hypothesis tokens", "[SEP]"]
    examples = ["", "“a man plays a guitar”", "", "“the man is asleep”", ""]
    rows = [("token\nembeddings", ["E[CLS]", "E(premise)", "E[SEP]", "E(hypothesis)", "E[SEP]"]),
            ("segment\nembeddings", ["E_A", "E_A", "E_A", "E_B", "E_B"]),
            ("position\nembeddings", ["E_0", "E_1 … E_m", "E_m+1", "E_m+2 …", "E_n"])]
    for xi, w, mid, tok, ex in zip(xs, widths, mids, tokens, examples):
        _box(ax, xi, 0.55, w, 0.45, tok, "data")
        if ex:
            _text(ax, mid, 0.33, ex, 8, style="italic", color=GREY)
        _arrow(ax, (mid, 1.0), (mid, 1.3))
    _text(ax, 1.75, 0.78, "input pair", ha="right")
    for i, (label, cells) in enumerate(rows):
        y = 1.3 + i * 0.62
        _text(ax, 1.75, y + 0.22, label, 8.5, ha="right")
        for xi, w, mid, cell in zip(xs, widths, mids, cells):
            _box(ax, xi, y, w, 0.44, cell, "trainable", 8.5)
            if i < len(rows) - 1:
                _text(ax, mid, y + 0.53, "+", 10)
    _text(ax, xs[-1] + widths[-1] + 0.15, 1.95, "sum →\nLayerNorm", 8, ha="left")
    for mid in mids:
        _arrow(ax, (mid, 3.04), (mid, 3.35))
    left, right = xs[0], xs[-1] + widths[-1]
    for k in (2, 1, 0):  # the stack behind the first block
        _box(ax, left + 0.1 * k, 3.35 + 0.1 * k, right - left, 1.15, style="trainable",
             lw=0.8 if k else 1.2)
    _text(ax, (left + right) / 2, 4.12, "encoder block  × 12  (bert-base)", 10, fontweight="bold")
    _text(ax, (left + right) / 2, 3.7, "multi-head self-attention (Q, K, V, O)  +  feed-forward "
          "network,\neach with a residual connection and LayerNorm", 8.5)
    outputs = ["h[CLS]", "h(premise) …", "h[SEP]", "h(hypothesis) …", "h[SEP]"]
    for i, (xi, w, mid, name) in enumerate(zip(xs, widths, mids, outputs)):
        _arrow(ax, (mid, 4.5 + (0.2 if i else 0)), (mid, 4.9))
        _box(ax, xi, 4.9, w, 0.4, name, "data", 8.5, lw=2.2 if i == 0 else 1.2)
    head_x, head_y = xs[0] - 0.25, 5.75
    _arrow(ax, (xs[0] + 0.45, 5.3), (xs[0] + 0.45, head_y))
    _text(ax, xs[0] + 0.55, 5.52, "the [CLS] vector (768 numbers) summarises the pair", 8,
          ha="left", color=GREY)
    _box(ax, head_x, head_y, 3.3, 0.75, "classification head\npooler (dense + tanh) → "
         "linear 768 → 3", "trainable", 8.5)
    cx = head_x + 3.3 + 0.9
    _arrow(ax, (head_x + 3.3, head_y + 0.375), (cx - 0.05, head_y + 0.375))
    _text(ax, head_x + 3.3 + 0.42, head_y + 0.5, "softmax", 8, va="baseline")
    for j, (name, p) in enumerate([("entailment", 0.05), ("neutral", 0.10),
                                   ("contradiction", 0.85)]):
        bx = cx + j * 1.45
        _box(ax, bx, head_y, 1.35, 0.75, "", "data")
        ax.add_patch(mpatches.Rectangle((bx + 0.1, head_y + 0.1), 1.15 * p, 0.16,
                                        facecolor=DATA_EDGE, edgecolor="none"))
        _text(ax, bx + 0.675, head_y + 0.52, name, 8.5)
    _text(ax, cx + 2.15, head_y - 0.2, "3 classes (MNLI / SNLI label ids 0, 1, 2)", 8,
          va="baseline", color=GREY)
    _legend(ax, ["trainable", "data", "frozen"],
            {"trainable": "trains in full fine-tuning",
             "frozen": "frozen (nothing here; see the\nother methods)"},
            loc="upper right", bbox_to_anchor=(1.0, 0.99))
    return fig


def _trapezoid(ax, cx: float, y: float, bottom: float, top: float, h: float, text: str,
               style: str) -> None:
    face, edge = STYLES[style]
    points = [(cx - bottom / 2, y), (cx + bottom / 2, y), (cx + top / 2, y + h),
              (cx - top / 2, y + h)]
    ax.add_patch(mpatches.Polygon(points, closed=True, facecolor=face, edgecolor=edge, lw=1.2))
    _text(ax, cx, y + h / 2, text, color=INK)


def _circle(ax, x: float, y: float, radius: float, text: str, size: float, edge: str) -> None:
    ax.add_patch(mpatches.Circle((x, y), radius, facecolor=PLAIN, edgecolor=edge))
    _text(ax, x, y, text, size)


def lora(d: int = HIDDEN, r: int = 8, alpha: int = 16) -> Figure:
    """A frozen d x d weight with the trainable low-rank path B A scaled by alpha / r beside it."""
    fig, ax = _canvas(10.6, 6.6, "LoRA: a low-rank update beside a frozen weight",
                      "h = W x + (α / r) · B A x, with W frozen and A, B trained (Hu et al., 2021)")
    x_c, w_c, a_c = 3.15, 1.9, 4.4
    _box(ax, x_c - 0.8, 0.35, 1.6, 0.5, f"x   (d = {d})", "data")
    # split of the input to both paths
    _arrow(ax, (x_c, 0.85), (x_c, 1.15), style="-")
    _arrow(ax, (w_c, 1.15), (a_c, 1.15), style="-")
    _arrow(ax, (w_c, 1.15), (w_c, 1.75))
    _arrow(ax, (a_c, 1.15), (a_c, 1.55))
    _box(ax, w_c - 1.1, 1.75, 2.2, 2.5, f"W\n\n{d} × {d}\npretrained,\nfrozen", "frozen", 10)
    _trapezoid(ax, a_c, 1.55, 2.0, 0.55, 0.95, "A   (r × d)\nrandom init", "trainable")
    _text(ax, a_c + 0.42, 2.6, f"r = {r}", 8.5, ha="left")
    _arrow(ax, (a_c, 2.5), (a_c, 2.75))
    _trapezoid(ax, a_c, 2.75, 0.55, 2.0, 0.95, "B   (d × r)", "trainable")
    _arrow(ax, (a_c, 3.7), (a_c, 4.05))
    _circle(ax, a_c, 4.3, 0.25, "× α/r", 8, PLAIN_EDGE)
    _text(ax, a_c + 1.15, 3.22, "B = 0 at init", 9.5, ha="left", fontweight="bold",
          color=TRAINABLE_EDGE)
    _text(ax, a_c + 1.15, 2.95, "so training starts from\nexactly the pretrained model", 8,
          ha="left", va="top", color=GREY)
    _text(ax, a_c + 0.35, 4.3, f"α = {alpha}, r = {r}\n→ scale {alpha / r:g}", 8, ha="left")
    # sum
    sum_y = 5.15
    _arrow(ax, (w_c, 4.25), (w_c, sum_y - 0.22))
    _text(ax, w_c - 0.12, 4.65, "W x", ha="right")
    _arrow(ax, (a_c, 4.55), (a_c, sum_y), style="-")
    _arrow(ax, (a_c, sum_y), (w_c + 0.22, sum_y))
    _text(ax, (a_c + w_c) / 2 + 0.3, sum_y + 0.14, "(α / r) · B A x", va="baseline")
    _circle(ax, w_c, sum_y, 0.22, "+", 12, INK)
    _arrow(ax, (w_c, sum_y + 0.22), (w_c, sum_y + 0.5))
    _text(ax, w_c, sum_y + 0.62, "h", 10)
    lora_params, full_params = 2 * r * d, d * d
    _notes(ax, 7.45, 5.45, 0.3, [
        (f"Parameters of one {d} × {d} projection", "bold", INK),
        (f"(d = {d}, r = {r}):", "bold", INK),
        (f"A + B:  2 · r · d = {lora_params:,}", "normal", TRAINABLE_EDGE),
        (f"W:  d² = {full_params:,}", "normal", FROZEN_EDGE),
        (f"the update trains {100 * lora_params / full_params:.1f} % of W's size", "normal", INK),
        ("", "normal", INK),
        (f"On query and value of all {LAYERS} layers:", "bold", INK),
        (f"{2 * LAYERS} × {lora_params:,} = {2 * LAYERS * lora_params:,}", "normal",
         TRAINABLE_EDGE),
        ("", "normal", INK),
        ("After training, B A can be merged", "normal", GREY),
        ("into W: W′ = W + (α / r) B A,", "normal", GREY),
        ("so inference costs nothing extra.", "normal", GREY)])
    _legend(ax, ["frozen", "trainable", "data"], loc="lower right", bbox_to_anchor=(0.99, 0.02))
    return fig


def _cells(ax, x: float, y: float, n: int, style: str, w: float = 0.22) -> float:
    """A row of n small token cells (0.36 high, 0.03 apart); returns the x where it ends."""
    for i in range(n):
        _box(ax, x + i * (w + 0.03), y, w, 0.36, style=style, lw=0.9)
    return x + n * (w + 0.03) - 0.03


def prefix_tuning(prefix_length: int = 30, bottleneck: int = 512, d: int = HIDDEN,
                  layers: int = LAYERS) -> Figure:
    """One attention layer whose keys and values get MLP-generated prefixes P_k, P_v."""
    fig, ax = _canvas(11.5, 7.4, "Prefix tuning: trainable keys and values in front of every layer",
                      f"prefix length {prefix_length}; the pretrained projections stay frozen "
                      "(Li & Liang, 2021)")
    # reparametrization (left)
    lx, lw_ = 0.35, 3.3
    _box(ax, lx, 0.5, lw_, 0.75, f"prefix embedding P′\n{prefix_length} × {d}", "trainable")
    _arrow(ax, (lx + lw_ / 2, 1.25), (lx + lw_ / 2, 1.65))
    _box(ax, lx, 1.65, lw_, 1.25, f"MLP (reparametrization)\nlinear {d} → {bottleneck}, tanh,"
         f"\nlinear {bottleneck} → {layers}·2·{d}", "trainable", 8.5)
    _arrow(ax, (lx + lw_ / 2, 2.9), (lx + lw_ / 2, 3.3))
    _box(ax, lx, 3.3, lw_, 0.95, f"reshape into P_k, P_v\nfor each of the {layers} layers\n"
         f"({prefix_length} × {d} each)", "trainable", 8.5)
    embedding = prefix_length * d
    mlp = d * bottleneck + bottleneck + bottleneck * layers * 2 * d + layers * 2 * d
    kept = layers * 2 * prefix_length * d
    _notes(ax, lx, 5.9, 0.27, [
        (f"trainable (bert-base, length {prefix_length}):", "bold", INK),
        (f"embedding {embedding:,} + MLP {mlp:,}", "normal", TRAINABLE_EDGE),
        (f"= {embedding + mlp:,}", "normal", TRAINABLE_EDGE),
        ("after training the MLP is dropped:", "normal", GREY),
        (f"{layers} × 2 × {prefix_length} × {d} = {kept:,}", "normal", GREY),
        ("prefix values are kept", "normal", GREY)])
    # the attention layer (right)
    ax.add_patch(mpatches.FancyBboxPatch((4.25, 0.3), 7.0, 6.1,
                                         boxstyle="round,pad=0,rounding_size=0.12",
                                         facecolor="none", edgecolor="#9a9a9a", ls="--"))
    _text(ax, 11.1, 6.25, f"one attention layer (ℓ = 1 … {layers}, every layer alike)", 8.5,
          ha="right", va="top", color=GREY)
    n_tok, tok_x = 4, 6.9
    end = _cells(ax, tok_x, 0.55, n_tok, "data")
    _text(ax, end + 0.12, 0.73, "hidden states of the\nn real tokens", 8, ha="left")
    centers = {"Q": 5.35, "K": 7.55, "V": 9.75}
    for name, cx in centers.items():
        _arrow(ax, (tok_x + 0.5, 0.91), (cx, 1.55), lw=0.9)
        _box(ax, cx - 0.6, 1.55, 1.2, 0.5, f"W_{name}", "frozen")
        _arrow(ax, (cx, 2.05), (cx, 2.5))
    # Q: real tokens only; K, V: the layer's prefix in front
    _cells(ax, centers["Q"] - 0.49, 2.5, n_tok, "data")
    _text(ax, centers["Q"] + 0.6, 2.68, "Q", ha="left")
    _text(ax, centers["Q"], 2.25, "n real tokens only", 8, color=GREY)
    _arrow(ax, (centers["Q"], 2.86), (centers["Q"], 4.0))
    bus_y = 3.45
    _arrow(ax, (lx + lw_, bus_y), (centers["V"] - 1.0, bus_y), color=TRAINABLE_EDGE, lw=1.5,
           style="-")
    _text(ax, 7.2, bus_y + 0.08, "this layer's P_k, P_v", 8, ha="left", va="baseline",
          color=TRAINABLE_EDGE)
    for name, cx in (("k", centers["K"]), ("v", centers["V"])):
        start = cx - 1.36
        mid = _cells(ax, start, 2.5, 3, "trainable")
        _cells(ax, mid + 0.12, 2.5, n_tok, "data")
        _arrow(ax, ((start + mid) / 2, bus_y), ((start + mid) / 2, 2.86), color=TRAINABLE_EDGE,
               lw=1.5)
        _text(ax, (start + mid) / 2, 2.25, f"P_{name} ({prefix_length})", 8.5,
              fontweight="bold", color=TRAINABLE_EDGE)
        _text(ax, mid + 0.12 + 1.05, 2.68, name.upper(), ha="left")
        _arrow(ax, (cx - 0.445, 2.86), (cx - 0.445, 4.0))
    _box(ax, 4.6, 4.0, 6.3, 0.6, "attention:  softmax( Q [P_k ; K]ᵀ / √d_head ) [P_v ; V]", "plain")
    _arrow(ax, (7.75, 4.6), (7.75, 4.95))
    _cells(ax, 7.26, 4.95, n_tok, "data")
    _text(ax, 8.35, 5.13, "n outputs (no outputs at prefix positions)", 8, ha="left")
    _arrow(ax, (7.75, 5.31), (7.75, 5.55))
    _box(ax, 5.6, 5.55, 4.3, 0.5, "W_O, LayerNorm, feed-forward  →  next layer", "frozen", 8.5)
    _legend(ax, ["frozen", "trainable", "data", "plain"], loc="upper left",
            bbox_to_anchor=(0.005, 0.915), ncol=2)
    return fig


def ptuning_v2_vs_prompt_tuning(num_tokens: int = 20, d: int = HIDDEN, layers: int = LAYERS
                                ) -> Figure:
    """Left: a soft prompt on the input embeddings only. Right: key/value prompts in every layer."""
    fig, ax = _canvas(12, 7.2)
    b = 0.4  # room for the legend at the bottom
    ax.plot([6.0, 6.0], [b + 0.3, b + 6.6], color="#bbbbbb", lw=1)
    for title, x0, deep in [("Prompt tuning (shallow)", 0.3, False),
                            ("P-Tuning v2 (deep)", 6.3, True)]:
        ax.text(x0, b + 6.6, title, fontsize=12, fontweight="bold", va="top")
        lx = x0 + (1.15 if deep else 0.3)  # layer boxes start here
        lw_ = 5.4 - (lx - x0)
        y_in = b + 0.95  # the input row
        if deep:
            _box(ax, lx, y_in, lw_, 0.5, "token embeddings of [CLS] sentence [SEP]", "data", 8.5)
        else:
            _box(ax, lx, y_in, 1.75, 0.5, f"{num_tokens} virtual tokens", "trainable", 8.5)
            _box(ax, lx + 1.85, y_in, lw_ - 1.85, 0.5, "token embeddings of the sentence",
                 "data", 8.5)
        _text(ax, lx, b + 0.7, "input embeddings (frozen embedding table)", 8, ha="left",
              color=GREY)
        y = b + 1.8
        for k, layer in enumerate([1, 2, layers]):
            _arrow(ax, (lx + lw_ / 2, y - 0.35), (lx + lw_ / 2, y))
            _box(ax, lx, y, lw_, 0.55, f"encoder layer {layer}   (Q, K, V, O, FFN frozen)",
                 "frozen", 8.5)
            if deep:
                _box(ax, x0 + 0.0, y + 0.03, 0.85, 0.49, "P_k, P_v", "trainable", 8)
                _arrow(ax, (x0 + 0.85, y + 0.275), (lx, y + 0.275), color=TRAINABLE_EDGE)
            y += 0.9
            if k == 1:
                _text(ax, lx + lw_ / 2, y - 0.12, "⋮", 14)
                if deep:
                    _text(ax, x0 + 0.425, y - 0.12, "⋮", 14, color=TRAINABLE_EDGE)
                y += 0.45
        _arrow(ax, (lx + lw_ / 2, y - 0.35), (lx + lw_ / 2, y))
        _box(ax, lx, y, lw_, 0.5, "classification head", "trainable", 8.5)
    # notes and counts
    shallow, deep_count = num_tokens * d, layers * 2 * num_tokens * d
    _text(ax, 0.3, b + 6.2, "the prompt is only at the input; deeper layers\nsee it only through "
          "attention", 8.5, ha="left", va="top", color=GREY)
    _text(ax, 6.3, b + 6.2, f"{num_tokens} key/value prompts at EVERY layer, trained\ndirectly "
          "(no MLP reparametrization)", 8.5, ha="left", va="top", color=GREY)
    ax.text(0.3, b + 0.3, f"trainable prompt (bert-base, {num_tokens} tokens):  {num_tokens} × {d}"
            f" = {shallow:,}  (+ head)", fontsize=9, color=TRAINABLE_EDGE, fontweight="bold")
    ax.text(6.3, b + 0.3, f"trainable prompts:  {layers} × 2 × {num_tokens} × {d} = "
            f"{deep_count:,}  (+ head)", fontsize=9, color=TRAINABLE_EDGE, fontweight="bold")
    _legend(ax, ["frozen", "trainable", "data"], loc="lower center",
            bbox_to_anchor=(0.5, 0.0), ncol=3)
    return fig
