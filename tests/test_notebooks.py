"""The chapter notebooks stay clean, small and thin; executing them is nbval's job (notebooks/)."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from tools.notebook_drift import cell_code, drift, main, saved_module

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
    for heading in ("learn", "Prerequisites"):
        assert heading.lower() in first.lower(), f"{path.name}: header lacks '{heading}'"
    assert "## Time and hardware" not in first, (
        f"{path.name}: the header is for the teaching; the time sits in the hidden cell")
    install = source(cells(path, "code")[0])
    assert '"google.colab" in sys.modules' in install and "pip install" in install, (
        f"{path.name}: the first code cell must install the library on Colab only")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_one_parameter_cell_switched_by_the_profile(path):
    tagged = [c for c in cells(path, "code") if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: exactly one code cell must be tagged 'parameters'"
    assert "choose(" in source(tagged[0]) and "profile_banner(" in source(tagged[0])


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_only_the_code_a_chapter_teaches_is_defined_in_it(path):
    """`def` and `class` only in `#@save MODULE` cells: the code the chapter teaches, exported
    to the library (d2l's convention). Plumbing (loading, plotting, records) stays in d2l_utils."""
    for cell in cells(path, "code")[1:]:
        code = cell_code(cell)
        if saved_module(code) is not None:
            continue
        for node in ast.walk(ast.parse(code)):
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef)), (
                f"{path.name}: `{node.name}` is defined in the notebook; it belongs in d2l_utils, "
                "or, if the chapter teaches it, in a `#@save MODULE` cell identical to MODULE's")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_saved_cells_are_the_library_code(path):
    """nbdev's export check: every definition in a `#@save` cell is its module's, verbatim."""
    assert drift(path) == [], "\n".join(drift(path))


def test_the_drift_check_finds_a_changed_definition():
    path = ROOT / "notebooks" / "01_snli_d2l_bert.ipynb"
    notebook = json.loads(path.read_text(encoding="utf-8"))
    saved = [c for c in notebook["cells"] if c["cell_type"] == "code"
             and saved_module(cell_code(c)) is not None]
    assert saved, "chapter 1 writes its model in the page"
    text = "".join(saved[0]["source"])
    saved[0]["source"] = text.replace("-1e6", "-1e9", 1)
    assert text != saved[0]["source"]
    assert any("differs from" in p for p in drift(notebook))
    saved[0]["source"] = text + "\n\nprint('plumbing')\n\n\ndef helper():\n    pass\n"
    problems = drift(notebook)
    assert any("only imports and definitions" in p for p in problems)
    assert any("`helper` is not defined" in p for p in problems)


def test_the_drift_command_exits_1_on_drift(tmp_path, capsys):
    path = ROOT / "notebooks" / "01_snli_d2l_bert.ipynb"
    assert main([str(path)]) == 0
    changed = tmp_path / path.name
    changed.write_text(path.read_text(encoding="utf-8").replace("-1e6", "-1e9", 1),
                       encoding="utf-8")
    assert main([str(changed)]) == 1
    assert "01_snli_d2l_bert.ipynb: code cell" in capsys.readouterr().out


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_ends_with_summary_and_exercises(path):
    tail = "\n".join(source(c) for c in cells(path, "markdown")[-2:])
    assert "## Summary" in tail and "## Exercises" in tail, path.name


SHOWN = {  # what each chapter must show of the mechanism it teaches (code cells)
    "01": ["def masked_softmax", "class MultiHeadAttention", "class EncoderBlock",
           "class BERTEncoder", "class BERTClassifier", "attention_weights", "plot_attention("],
    "02": ["tokenizer(premise, hypothesis)", "make_collator", "model(**batch)",
           "TrainingArguments(", "Trainer(", "compute_metrics", "loss.backward()"],
    "03": ["trainable_table(", "parameter_shapes(lora, \"lora_\")", "set_active_adapters(None)",
           "prefix_shapes("],
    "04": ["prompt-tuning", "encoder_inputs(", "pool.dense(hidden[:, 0])", "get_prompt(",
           "prefix_shapes("],
    "05": ["class LoRALinear", "lora_B", "disable_adapter()", "merge_and_unload()",
           "trainable_table("],
}


@pytest.mark.parametrize("chapter", sorted(SHOWN))
def test_each_chapter_shows_the_mechanism_it_teaches(chapter):
    path = next(p for p in NOTEBOOKS if p.name.startswith(chapter))
    code = "\n".join(source(c) for c in cells(path, "code"))
    missing = [needle for needle in SHOWN[chapter] if needle not in code]
    assert not missing, f"{path.name} no longer shows {missing}"
