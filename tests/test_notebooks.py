"""The chapter notebooks stay clean, small and thin; executing them is nbval's job (notebooks/)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
MAX_BYTES = 60_000


def repository_url() -> str:
    text = (ROOT / "_config.yml").read_text()
    match = re.search(r"^\s+url:\s*(\S+)", text, re.M)
    assert match, "_config.yml has no repository url"
    return match.group(1).rstrip("/")


def cells(path: Path, kind: str | None = None) -> list[dict]:
    notebook = json.loads(path.read_text(encoding="utf-8"))
    return [c for c in notebook["cells"] if kind is None or c["cell_type"] == kind]


def source(cell: dict) -> str:
    return "".join(cell["source"])


def test_there_are_six_chapters():
    names = [p.name for p in NOTEBOOKS]
    assert len(names) == 6, names
    assert [n[:2] for n in names] == ["01", "02", "03", "04", "05", "06"], names


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    from tools.clean_notebooks import clean, serialise

    text = path.read_text(encoding="utf-8")
    assert serialise(clean(json.loads(text))) == text, (
        f"{path.name} carries outputs, execution counts or editor metadata: run "
        "`python tools/clean_notebooks.py` (results belong in results/records, not in outputs)")
    assert len(text.encode()) < MAX_BYTES, f"{path.name} is {len(text)} bytes"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_header_badge_and_install_cell(path):
    first = source(cells(path)[0])
    assert first.startswith("# "), f"{path.name}: the first cell must be the chapter title"
    badge = f"https://colab.research.google.com/github/{repository_url().split('github.com/')[1]}"
    assert f"{badge}/blob/main/notebooks/{path.name}" in first, (
        f"{path.name}: Colab badge must point at this notebook in the repository set in "
        "_config.yml (run `python tools/sync_badges.py`)")
    for heading in ("learn", "Prerequisites", "Time and hardware"):
        assert heading.lower() in first.lower(), f"{path.name}: header lacks '{heading}'"
    install = source(cells(path, "code")[0])
    assert '"google.colab" in sys.modules' in install and "pip install" in install, (
        f"{path.name}: the first code cell must install the library on Colab only")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameter_cell_switched_by_the_profile(path):
    tagged = [c for c in cells(path, "code") if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one code cell must be tagged 'parameters'"
    assert "choose(" in source(tagged[0]) and "profile_banner(" in source(tagged[0])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_helpers_defined_in_notebooks(path):
    for cell in cells(path, "code")[1:]:
        code = "\n".join(line for line in source(cell).splitlines()
                         if not line.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(code)):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef)), (
                f"{path.name}: `{node.name}` is defined in the notebook; it belongs in d2l_utils")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_summary_and_exercises(path):
    tail = "\n".join(source(c) for c in cells(path, "markdown")[-2:])
    assert "## Summary" in tail and "## Exercises" in tail, path.name
