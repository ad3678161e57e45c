"""The chapters' install cell: on Colab, fetch the book and add what it needs to Colab's packages.

    python tools/colab_install_cell.py            # print the cell
    python tools/colab_install_cell.py --check    # exit 1, naming the notebooks whose cell differs
    python tools/colab_install_cell.py --write    # put it into every notebooks/*.ipynb

The cell does nothing outside Colab. On Colab it clones the repository named in `_config.yml` (only
if /content/book is not there yet, so it can run again after a restart), installs
tools/colab_requirements.txt (the one list of what Colab lacks; `tools/colab_check.py` rehearses
it against Colab's package set) and then the book itself with `--no-deps`, so the project's own
exact pins (numpy, matplotlib, ...) do not replace Colab's. It compares the installed versions
before and after and asks for a restart only when a package the kernel has already imported
changed version.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from string import Template

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tools.clean_notebooks import serialise  # noqa: E402
from tools.colab_check import REQUIREMENTS  # noqa: E402
from tools.sync_badges import repository  # noqa: E402

BOOK = "/content/book"

CELL = Template("""\
# Colab only: fetch the book and add what it needs to Colab's packages (Colab's CUDA torch,
# numpy and pandas stay). Safe to run again, also after a restart.
import sys

if "google.colab" in sys.modules:
    import importlib
    import importlib.metadata as md
    import os
    def versions():  # {package: installed version}
        importlib.invalidate_caches()
        return {d.name: d.version for d in md.distributions() if d.name}
    before = versions()
    REPO_URL = "$url"
    if not os.path.isdir("$book"):
        !git clone -q --depth 1 --branch $branch {REPO_URL} $book
    %pip install -q -r $book/$requirements
    %pip install -q --no-deps -e $book
    sys.path.insert(0, "$book")
    changed = {name for name, version in versions().items() if before.get(name) != version}
    stale = sorted(module for module, names in md.packages_distributions().items()
                   if module in sys.modules and changed.intersection(names))
    if stale:
        print("Already imported, now installed in another version:", ", ".join(stale))
        print("Runtime → Restart session, then Run all")""")


def install_cell() -> str:
    """The cell's source, with the repository from `_config.yml`."""
    repo, branch = repository()
    return CELL.substitute(book=BOOK, branch=branch, url=f"https://github.com/{repo}",
                           requirements=REQUIREMENTS.relative_to(ROOT).as_posix())


def install_cell_index(notebook: dict, name: str = "notebook") -> int:
    """Index of the notebook's install cell: the code cell that clones the book or pip-installs."""
    found = [i for i, cell in enumerate(notebook["cells"]) if cell["cell_type"] == "code"
             and any(key in "".join(cell["source"]) for key in ("%pip install", "git clone"))]
    if len(found) != 1:
        raise SystemExit(f"{name}: expected one install cell (with `%pip install` or "
                         f"`git clone`), found {len(found)}")
    return found[0]


def with_install_cell(notebook: dict, source: str, name: str = "notebook") -> dict:
    cell = notebook["cells"][install_cell_index(notebook, name)]
    cell["source"] = source.splitlines(keepends=True)
    cell["outputs"], cell["execution_count"] = [], None
    return notebook


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help="replace the cell in the notebooks")
    action.add_argument("--check", action="store_true", help="report notebooks whose cell differs")
    parser.add_argument("paths", nargs="*", type=Path, help="default: notebooks/*.ipynb")
    args = parser.parse_args(argv)
    source = install_cell()
    if not (args.write or args.check):
        print(source)
        return 0
    differ = []
    for path in args.paths or sorted((ROOT / "notebooks").glob("*.ipynb")):
        text = path.read_text(encoding="utf-8")
        updated = serialise(with_install_cell(json.loads(text), source, path.name))
        if updated != text:
            differ.append(path)
            if args.write:
                path.write_text(updated, encoding="utf-8")
    for path in differ:
        print(f"{'updated' if args.write else 'install cell differs'}: {path}")
    return 1 if (args.check and differ) else 0


if __name__ == "__main__":
    sys.exit(main())
