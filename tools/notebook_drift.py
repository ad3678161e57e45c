"""nbdev's export check for the chapters: the code a chapter writes out is the library's code.

As d2l marks the classes a chapter writes `#@save` to export them (and nbdev fails when notebook
and library drift), a code cell whose first line is `#@save d2l_utils.scratch.bert` holds only
imports and definitions, each identical to the one in that module, character for character.
`drift` lists every difference; `tests/test_notebooks.py` fails on any, and

    python tools/notebook_drift.py                 # every chapter; exit 1 on drift
    python tools/notebook_drift.py notebooks/01_snli_d2l_bert.ipynb

prints them. (Code a chapter shows without writing it out comes from `show_source`.)
"""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SAVE_MARK = "#@save"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


@dataclass(frozen=True)
class SavedCell:
    """A chapter cell exported to the library: its index among the code cells, its module, code."""

    index: int
    module: str
    code: str


def cell_code(cell: dict) -> str:
    """A code cell's source without IPython's `%magic` and `!shell` lines (not Python)."""
    text = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith(("%", "!")))


def saved_module(code: str) -> str | None:
    """The module a cell is exported to (`#@save MODULE` on its first line), else None."""
    first = code.lstrip("\n").split("\n", 1)[0].strip()
    if not first.startswith(SAVE_MARK):
        return None
    module = first[len(SAVE_MARK):].strip()
    if not module:
        raise ValueError(f"`{first}`: name the module the cell is saved to, e.g. "
                         f"`{SAVE_MARK} d2l_utils.scratch.bert`")
    return module


def saved_cells(notebook: dict | str | Path) -> list[SavedCell]:
    """The `#@save` cells of a notebook (a path or its JSON), in order."""
    if not isinstance(notebook, dict):
        notebook = json.loads(Path(notebook).read_text(encoding="utf-8"))
    codes = [cell_code(c) for c in notebook["cells"] if c["cell_type"] == "code"]
    return [SavedCell(index, module, code) for index, code in enumerate(codes)
            if (module := saved_module(code)) is not None]


def definitions(code: str) -> dict[str, str]:
    """Top-level functions and classes of `code`: name -> source text, decorators included."""
    lines = code.splitlines()
    found = {}
    for node in ast.parse(code).body:
        if isinstance(node, DEFINITIONS):
            start = min([node.lineno] + [d.lineno for d in node.decorator_list])
            found[node.name] = "\n".join(lines[start - 1:node.end_lineno])
    return found


def drift(notebook: dict | str | Path) -> list[str]:
    """Every way the notebook's `#@save` cells differ from their modules (empty: none).

    A saved cell may hold imports and definitions only; each definition must exist in its module
    with exactly the same text, so the page shows the code the library runs.
    """
    problems = []
    for cell in saved_cells(notebook):
        where = f"code cell {cell.index} ({SAVE_MARK} {cell.module})"
        try:
            library = definitions(inspect.getsource(importlib.import_module(cell.module)))
        except ImportError as err:
            problems.append(f"{where}: cannot import {cell.module}: {err}")
            continue
        for node in ast.parse(cell.code).body:
            if not isinstance(node, (*DEFINITIONS, ast.Import, ast.ImportFrom)):
                problems.append(f"{where}, line {node.lineno}: only imports and definitions "
                                "belong in a saved cell")
        for name, text in definitions(cell.code).items():
            if name not in library:
                problems.append(f"{where}: `{name}` is not defined in {cell.module}")
            elif library[name] != text:
                problems.append(f"{where}: `{name}` differs from {cell.module}.{name}")
    return problems


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (sys.argv[1:] if argv is None else argv)] or sorted(
        (ROOT / "notebooks").glob("*.ipynb"))
    sys.path.insert(0, str(ROOT))
    problems = [f"{path.name}: {problem}" for path in paths for problem in drift(path)]
    print("\n".join(problems) or f"no drift in {len(paths)} notebooks")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
