"""Build the book into _build/html, offline, from the chapters' executed copies: no training.

    python tools/build_book.py            # build (the book pages' small code cells are cached)
    python tools/build_book.py --clean    # remove _build first (a from-scratch build)

Each chapter page is the clean notebook from `notebooks/` with the outputs of its executed copy
in `results/executed/` (the book's own cpu-profile run, `tools/run_chapters.py`), and a line at
the top that says where they come from; a chapter whose code changed since its copy was made
says so on its page. The book's own pages (`book/*.md`) execute their few code cells, which only
read `results/`. The notebook download on each chapter page is the clean notebook.

Any Sphinx warning fails the build: a broken internal link, a page missing from the table of
contents, or a code cell that raises.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BUILD = ROOT / "_build"
SOURCE = BUILD / "source"  # what jupyter-book reads: the book's files, chapters with outputs
BOOK_FILES = ["_config.yml", "_toc.yml", "book", "d2l_utils/figures", "_static", "benchmarks"]


def book_environment() -> dict[str, str]:
    """The environment the book pages' code cells run in: offline, quiet progress bars."""
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TOKENIZERS_PARALLELISM="false",
               TQDM_DISABLE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    return env


def stage(source: Path = SOURCE) -> dict[str, bool]:
    """Write the book's sources into `source`: the book's own files as they are, each chapter
    as the page notebook (`tools/executed_copies.page_notebook`). Returns chapter -> stale."""
    import nbformat

    from tools.executed_copies import page_notebook

    if source.exists():
        shutil.rmtree(source)
    source.mkdir(parents=True)
    for name in BOOK_FILES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=shutil.ignore_patterns(
                "__pycache__", "*.py", "*.jsonl", "batching"))
        elif path.is_file():
            shutil.copy2(path, source / name)
    (source / "notebooks").mkdir()
    stale = {}
    for notebook in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        page, stale[notebook.stem] = page_notebook(notebook)
        nbformat.write(page, source / "notebooks" / notebook.name)
    return stale


def clean_downloads(html: Path) -> None:
    """The download button gives the clean notebook from notebooks/, not the page's copy."""
    for notebook in (ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        target = html / "_sources" / "notebooks" / notebook.name
        if target.parent.is_dir():
            shutil.copy2(notebook, target)


def build(clean: bool = False) -> int:
    """Stage the sources, run jupyter-book on them, and report stale chapters."""
    if clean and BUILD.exists():
        shutil.rmtree(BUILD)
    stale = stage()
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(SOURCE), "--path-output", str(ROOT), "--warningiserror", "--keep-going",
               "--all"]  # every page again: Sphinx skips an unchanged .md whose records changed
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT, env=book_environment())
    index = BUILD / "html" / "index.html"
    if result.returncode == 0 and index.exists():
        clean_downloads(BUILD / "html")
        print(f"book built: {index}")
        for name in (name for name, is_stale in stale.items() if is_stale):
            print(f"note: {name}'s outputs are out of date or missing (its page says so); "
                  "re-run it with tools/run_chapters.py")
    else:
        print("book build FAILED: see the warnings above (file and line are named there)",
              file=sys.stderr)
    return result.returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clean", action="store_true", help="delete _build before building")
    return build(parser.parse_args(argv).clean)


if __name__ == "__main__":
    sys.exit(main())
