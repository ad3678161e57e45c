"""Build the book into _build/html, offline, with the chapters executed in the tiny profile.

    python tools/build_book.py            # build (executes notebooks; cached in _build/)
    python tools/build_book.py --clean    # remove _build first (a from-scratch build)

Any Sphinx warning fails the build: a broken internal link, a page missing from the table of
contents, or a notebook cell that raises. Real results on the pages come from results/records.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "_build"


def book_environment() -> dict[str, str]:
    """The environment notebooks execute in: tiny profile, offline, quiet progress bars, and
    runs in a fresh folder of their own (never a learner's `runs/`)."""
    env = dict(os.environ)
    env.update(D2L_TINY="1", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1",
               D2L_OUTPUT_DIR=tempfile.mkdtemp(prefix="d2l_book_runs_"),
               TOKENIZERS_PARALLELISM="false", TQDM_DISABLE="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    return env


def build(clean: bool = False) -> int:
    if clean and BUILD.exists():
        shutil.rmtree(BUILD)
    command = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build",
               str(ROOT), "--path-output", str(ROOT), "--warningiserror", "--keep-going"]
    print("$", " ".join(command), flush=True)
    result = subprocess.run(command, cwd=ROOT, env=book_environment())
    index = BUILD / "html" / "index.html"
    if result.returncode == 0 and index.exists():
        print(f"book built: {index}")
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
