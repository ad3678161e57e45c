"""Draw the book's architecture figures into d2l_utils/figures/ as SVG (reproducible bytes).

    python tools/draw_figures.py                    # all five figures into d2l_utils/figures/
    python tools/draw_figures.py --only lora        # one figure
    python tools/draw_figures.py --out-dir /tmp/f   # somewhere else

Four figures are the chapters' own (`tools/diagrams.py`; the notebooks show the SVGs);
the fifth, what trains in each method, is the intro page's and is drawn here. It builds
random-weight bert-base-uncased and roberta-base models from the shipped configs to count
parameters (offline, about a minute on a CPU); the others take a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import matplotlib
import matplotlib.patches as mpatches
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

ROOT = Path(__file__).resolve().parent.parent
FIGURES_DIR = ROOT / "d2l_utils" / "figures"  # shipped with the package (pyproject package-data)
sys.path.insert(0, str(ROOT))

from tools import diagrams  # noqa: E402
from tools.diagrams import INK, STYLES, SVG_RC, TRAINABLE, TRAINABLE_EDGE, Diagram, _legend  # noqa: E402

# The backbones (and the task that fixes the head) of the methods_overview bars.
OVERVIEW_MODELS: tuple[tuple[str, str], ...] = (("bert-base-uncased", "mnli"),
                                                ("roberta-base", "cola"))
OVERVIEW_METHODS: tuple[tuple[str, str], ...] = (
    ("full", "full fine-tuning"), ("freeze", "freeze (last layer)"), ("bitfit", "BitFit"),
    ("lora", "LoRA (q, v)"), ("prefix", "prefix tuning"), ("ptuning-v2", "P-Tuning v2"),
    ("prompt-tuning", "prompt tuning"))
OVERVIEW_PARTS = ("embeddings", "attention\nweights", "FFN\nweights", "biases /\nLayerNorm",
                  "added\nparameters", "classification\nhead")


# ---------------------------------------------------------------------------------------------
# 5. What trains in each method


# (style, text) per method and part, in the order of OVERVIEW_PARTS.
_GRID: dict[str, list[tuple[str, str]]] = {
    "full": [("trainable", "")] * 4 + [("none", "—"), ("trainable", "")],
    "freeze": [("frozen", ""), ("partial", "last layer"), ("partial", "last layer"),
               ("partial", "last layer"), ("none", "—"), ("trainable", "+ pooler\n(BERT)")],
    "bitfit": [("frozen", "")] * 3 + [("partial", "bias terms"), ("none", "—"),
                                      ("partial", "biases")],
    "lora": [("frozen", "")] * 4 + [("trainable", "A, B beside\nq and v"), ("trainable", "")],
    "prefix": [("frozen", "")] * 4 + [("trainable", "MLP →\nK/V prefixes"),
                                      ("trainable", "")],
    "ptuning-v2": [("frozen", "")] * 4 + [("trainable", "K/V prompts,\nevery layer"),
                                          ("trainable", "")],
    "prompt-tuning": [("frozen", "")] * 4 + [("trainable", "soft prompt\non the input"),
                                             ("trainable", "")],
}


def overview_counts(models: Sequence[tuple[str, str]] = OVERVIEW_MODELS,
                    methods: Iterable[str] | None = None) -> dict[str, dict[str, dict]]:
    """`parameter_counts` of every method (library defaults) on each (backbone, task).

    Builds random-weight models from the shipped configs (offline, a few seconds each).
    """
    import warnings

    from d2l_utils.methods import method_config, parameter_counts

    names = list(methods) if methods is not None else [m for m, _ in OVERVIEW_METHODS]
    counts: dict[str, dict[str, dict]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for model, task in models:
            counts[model] = {name: parameter_counts(model, task, method_config(name))
                             for name in names}
    return counts


def methods_overview(counts: dict[str, dict[str, dict]] | None = None,
                     models: Sequence[tuple[str, str]] = OVERVIEW_MODELS) -> Figure:
    """A grid of what trains in each method, with each method's trainable share beside it.

    `counts` maps a backbone name to {method: count_parameters dict}; None computes them with
    `overview_counts(models)` (random weights, no download; about a minute on a CPU).
    """
    if counts is None:
        counts = overview_counts(models)
    fig = Diagram(figsize=(13, 6.2))
    n_rows, n_cols = len(OVERVIEW_METHODS), len(OVERVIEW_PARTS)
    grid = fig.add_axes((0.125, 0.19, 0.5, 0.68))
    grid.set_xlim(0, n_cols)
    grid.set_ylim(0, n_rows)
    grid.set_axis_off()
    fig.text(0.01, 0.965, "What trains in each method", fontsize=12, fontweight="bold",
             va="top")
    for i, (method, label) in enumerate(OVERVIEW_METHODS):
        y = n_rows - 1 - i
        grid.text(-0.08, y + 0.5, label, ha="right", va="center", fontsize=9.5)
        for j, (style, text) in enumerate(_GRID[method]):
            face, edge = STYLES["plain" if style == "none" else style]
            grid.add_patch(mpatches.Rectangle((j + 0.04, y + 0.06), 0.92, 0.88, facecolor=face,
                                              edgecolor=edge if style != "none" else "#cccccc",
                                              lw=0.8))
            if text:
                grid.text(j + 0.5, y + 0.5, text, ha="center", va="center", fontsize=8,
                          color="#999999" if style == "none" else INK)
    for j, part in enumerate(OVERVIEW_PARTS):
        grid.text(j + 0.5, n_rows + 0.1, part, ha="center", va="bottom", fontsize=9)
    _legend(grid, ["trainable", "partial", "frozen"], loc="upper center",
            bbox_to_anchor=(0.5, -0.02), ncol=3,
            labels={"partial": "trains in part", "frozen": "frozen (pretrained)"})
    # trainable share, log scale, rows aligned with the grid
    bars = fig.add_axes((0.69, 0.19, 0.24, 0.68))
    bars.set_ylim(0, n_rows)
    colors = [TRAINABLE, TRAINABLE_EDGE, "#8c2d04", "#fdd0a2"]
    tasks = dict(models)
    names = list(counts)
    height = 0.8 / max(len(names), 1)
    for k, model in enumerate(names):
        label = _model_label(model, tasks.get(model))  # on the model's first bar only
        for i, (method, _) in enumerate(OVERVIEW_METHODS):
            c = counts[model].get(method)
            if c is None:
                continue
            y = n_rows - 1 - i + 0.1 + (len(names) - 1 - k) * height + height / 2
            share = 100 * c["trainable"] / c["total"]
            bars.barh(y, share, height=height * 0.9, color=colors[k % len(colors)],
                      label=label)
            label = None
            bars.text(share * 1.15, y, f"{c['trainable']:,}  ({share:.3g} %)", va="center",
                      fontsize=7)
    bars.set_xscale("log")
    bars.set_xlim(0.005, 2e4)
    bars.set_xticks([0.01, 0.1, 1, 10, 100])
    bars.set_xticklabels(["0.01 %", "0.1 %", "1 %", "10 %", "100 %"], fontsize=8)
    bars.xaxis.set_minor_locator(NullLocator())
    bars.spines["bottom"].set_bounds(0.005, 100)
    bars.set_yticks([])
    for side in ("top", "right", "left"):
        bars.spines[side].set_visible(False)
    bars.set_xlabel("trainable parameters (share of the total, log scale)", fontsize=8.5)
    bars.set_title("trainable parameters with the library's defaults\n(random-weight models "
                   "from the shipped configs)", fontsize=9)
    bars.legend(loc="upper center", bbox_to_anchor=(0.4, -0.13), ncol=1, fontsize=8,
                frameon=False)
    heads = [f"{model} {counts[model]['full']['head_params']:,}" for model in names
             if "head_params" in counts[model].get("full", {})]
    if heads:
        fig.text(0.01, 0.02, "Counts include the classification head (" + ", ".join(heads)
                 + "); prefix tuning uses the adapters library's 2-layer head.", fontsize=8,
                 color="#555555")
    return fig


def _model_label(model: str, task: str | None) -> str:
    if task is None:
        return model
    from d2l_utils.tasks import get_task

    spec = get_task(task)
    return f"{model} ({spec.glue_dir or task}, {spec.num_labels} labels)"


# ---------------------------------------------------------------------------------------------
# Writing the SVGs

FIGURES: dict[str, Callable[..., Figure]] = {
    "bert_finetuning": diagrams.bert_finetuning,
    "lora": diagrams.lora,
    "prefix_tuning": diagrams.prefix_tuning,
    "ptuning_v2_vs_prompt_tuning": diagrams.ptuning_v2_vs_prompt_tuning,
    "methods_overview": methods_overview,
}


def save_svg(fig: Figure, path: str | Path) -> Path:
    """Write `fig` as an SVG that keeps text as text and is identical from run to run."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with matplotlib.rc_context(SVG_RC):
        fig.savefig(path, format="svg", metadata={"Date": None})
    return path


def save_figures(out_dir: str | Path, names: Iterable[str] | None = None,
                 overview_counts: dict[str, dict[str, dict]] | None = None) -> list[Path]:
    """Draw the figures `names` (all by default) into `out_dir`/NAME.svg; returns the paths.

    `overview_counts` is passed to `methods_overview` (None computes it).
    """
    names = list(names) if names is not None else list(FIGURES)
    unknown = sorted(set(names) - set(FIGURES))
    if unknown:
        raise ValueError(f"unknown figures {unknown}; choose from {', '.join(FIGURES)}")
    paths = []
    for name in names:
        fig = (methods_overview(overview_counts) if name == "methods_overview"
               else FIGURES[name]())
        paths.append(save_svg(fig, Path(out_dir) / f"{name}.svg"))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=FIGURES_DIR,
                        help="folder for NAME.svg (default: d2l_utils/figures/)")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), metavar="NAME",
                        help=f"draw only these figures: {', '.join(FIGURES)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # counts come from the shipped configs
    for path in save_figures(args.out_dir, args.only):
        print(f"{path}  ({path.stat().st_size / 1024:.1f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
