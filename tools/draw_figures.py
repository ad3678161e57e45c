"""Draw the book's architecture figures into figures/ as SVG (text stays text, reproducible bytes).

    python tools/draw_figures.py                    # all five figures into figures/
    python tools/draw_figures.py --only lora        # one figure
    python tools/draw_figures.py --out-dir /tmp/f   # somewhere else

methods_overview builds random-weight bert-base-uncased and roberta-base models from the shipped
configs to count parameters (offline, about a minute on a CPU); the others take a second.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from d2l_utils.pages.figures import FIGURES, save_figures  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=ROOT / "figures",
                        help="folder for NAME.svg (default: figures/)")
    parser.add_argument("--only", nargs="+", choices=list(FIGURES), metavar="NAME",
                        help=f"draw only these figures: {', '.join(FIGURES)}")
    args = parser.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")  # counts come from the shipped configs
    for path in save_figures(args.out_dir, args.only):
        print(f"{path}  ({path.stat().st_size / 1024:.1f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
