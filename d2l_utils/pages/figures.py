"""The chapters' architecture diagrams, shipped with the package as SVG files.

`python tools/draw_figures.py` draws them with matplotlib (`tools/diagrams.py`, one function per
figure, text kept as text, the same bytes on every run) into `d2l_utils/figures/`, and a test
fails when a file there is not what that code draws. A chapter shows one with `show_figure`, so
no drawing code runs on the reader's machine. Grey = frozen, orange = trainable, blue = inputs
and activations.
"""

from __future__ import annotations

from importlib import resources
from typing import Any


def figure_svg(name: str) -> str:
    """The SVG text of the shipped figure `name` (e.g. "lora"); the error lists the others."""
    folder = resources.files("d2l_utils") / "figures"
    path = folder / f"{name}.svg"
    if not path.is_file():
        known = sorted(p.name.removesuffix(".svg") for p in folder.iterdir()
                       if p.name.endswith(".svg"))
        raise ValueError(f"no figure {name!r}; the package has {', '.join(known)}")
    return path.read_text(encoding="utf-8")


def show_figure(name: str) -> Any:
    """Figure `name` as an object Jupyter displays inline (IPython's `SVG`)."""
    from IPython.display import SVG

    return SVG(data=figure_svg(name))
