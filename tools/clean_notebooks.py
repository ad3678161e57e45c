"""Strip outputs, execution counts and per-user metadata from the chapter notebooks.

The committed notebooks carry no outputs (the book executes them at build time, and results come
from the run records in results/records). `tests/test_notebooks.py` fails until this has been run:

    python tools/clean_notebooks.py            # clean notebooks/*.ipynb in place
    python tools/clean_notebooks.py --check    # exit 1 and list the notebooks that need it
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
KEEP_METADATA = ("kernelspec", "language_info")


def clean(notebook: dict) -> dict:
    """The notebook without outputs, execution counts and editor metadata."""
    notebook["metadata"] = {k: v for k, v in notebook.get("metadata", {}).items()
                            if k in KEEP_METADATA}
    notebook["metadata"].get("language_info", {}).pop("version", None)
    notebook["nbformat_minor"] = 4  # no random cell ids in git (4.5 requires them)
    for cell in notebook["cells"]:
        cell.pop("id", None)
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items()
                            if k in ("tags", "mystnb")}  # mystnb: the website's toggle labels
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
    return notebook


def serialise(notebook: dict) -> str:
    return json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", type=Path)
    parser.add_argument("--check", action="store_true", help="report, do not rewrite")
    args = parser.parse_args(argv)
    paths = args.paths or sorted((ROOT / "notebooks").glob("*.ipynb"))
    dirty = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        cleaned = serialise(clean(json.loads(text)))
        if cleaned != text:
            dirty.append(path)
            if not args.check:
                path.write_text(cleaned, encoding="utf-8")
    verb = "need cleaning" if args.check else "cleaned"
    for path in dirty:
        print(f"{verb}: {path}")
    return 1 if (args.check and dirty) else 0


if __name__ == "__main__":
    sys.exit(main())
