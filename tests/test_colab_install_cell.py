"""The Colab install cell (tools/colab_install_cell.py), rehearsed with a stand-in for Colab."""

from __future__ import annotations

import json
import shutil
import sys
import types
from pathlib import Path

import pytest
from IPython.core.inputtransformer2 import TransformerManager

from tools.clean_notebooks import clean, serialise
from tools.colab_install_cell import install_cell, install_cell_index, main
from tools.sync_badges import repository

ROOT = Path(__file__).resolve().parent.parent
RESTART = "Runtime → Restart session, then Run all"


class FakeIPython:
    """Records the cell's shell commands and magics; `on_pip` plays pip's part."""

    def __init__(self, on_pip=lambda line: None):
        self.calls, self.on_pip = [], on_pip

    def system(self, command):
        self.calls.append(("!", command))

    def run_line_magic(self, magic, line):
        self.calls.append((magic, line))
        if magic == "pip":
            self.on_pip(line)


def run_cell(source: str, ipython: FakeIPython) -> None:
    code = TransformerManager().transform_cell(source)
    exec(compile(code, "<install cell>", "exec"), {"get_ipython": lambda: ipython})


def fake_distribution(site: Path, version: str) -> None:
    """A package `d2l_fake_pkg` installed in `site` at `version` (as pip leaves it)."""
    (site / "d2l_fake_pkg").mkdir(exist_ok=True)
    (site / "d2l_fake_pkg" / "__init__.py").write_text("")
    for old in site.glob("d2l_fake_pkg-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"d2l_fake_pkg-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: d2l-fake-pkg\nVersion: {version}\n")
    (info / "top_level.txt").write_text("d2l_fake_pkg\n")


@pytest.fixture
def colab(monkeypatch, tmp_path):
    """Pretend to be on Colab, with the book at tmp_path/book; yields the cell source for it."""
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    monkeypatch.setattr(sys, "path", list(sys.path))
    site = tmp_path / "site"
    site.mkdir()
    fake_distribution(site, "1.0")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "d2l_fake_pkg", raising=False)
    return site, install_cell().replace("/content/book", str(tmp_path / "book"))


def test_source_names_the_repository_and_the_requirements_file():
    source = install_cell()
    repo, branch = repository()
    assert f'REPO_URL = "https://github.com/{repo}"' in source
    assert f"git clone -q --depth 1 --branch {branch} {{REPO_URL}} /content/book" in source
    assert "%pip install -q -r /content/book/tools/colab_requirements.txt" in source
    assert "%pip install -q --no-deps -e /content/book" in source
    assert '"google.colab" in sys.modules' in source and "pip install" in source
    assert (ROOT / "tools" / "colab_requirements.txt").is_file()
    assert len(source.splitlines()) <= 25, "learners read this cell: keep it short"


def test_does_nothing_outside_colab(monkeypatch):
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    ipython = FakeIPython()
    run_cell(install_cell(), ipython)
    assert ipython.calls == []


def test_on_colab_clones_once_then_installs_without_deps(colab, tmp_path, capsys):
    _, source = colab
    ipython = FakeIPython()
    run_cell(source, ipython)
    book = str(tmp_path / "book")
    assert [kind for kind, _ in ipython.calls] == ["!", "pip", "pip"]
    assert ipython.calls[0][1].endswith(f" {book}") and "git clone" in ipython.calls[0][1]
    assert ipython.calls[1][1] == f"install -q -r {book}/tools/colab_requirements.txt"
    assert ipython.calls[2][1] == f"install -q --no-deps -e {book}"
    assert sys.path[0] == book
    assert RESTART not in capsys.readouterr().out  # nothing imported changed

    (tmp_path / "book").mkdir()  # run again (after a restart): the clone is there
    again = FakeIPython()
    run_cell(source, again)
    assert [kind for kind, _ in again.calls] == ["pip", "pip"]


def test_asks_for_a_restart_only_when_an_imported_package_changed(colab, capsys):
    site, source = colab
    upgrade = FakeIPython(on_pip=lambda line: "-r " in line and fake_distribution(site, "2.0"))
    run_cell(source, upgrade)  # changed, but never imported: no restart
    assert RESTART not in capsys.readouterr().out

    import d2l_fake_pkg  # noqa: F401  (now the kernel uses version 2.0)
    run_cell(source, FakeIPython())  # nothing changes: no restart
    assert RESTART not in capsys.readouterr().out

    downgrade = FakeIPython(on_pip=lambda line: "-r " in line and fake_distribution(site, "1.0"))
    run_cell(source, downgrade)
    out = capsys.readouterr().out
    assert RESTART in out and "d2l_fake_pkg" in out


def test_write_replaces_only_the_install_cell_and_keeps_notebooks_clean(tmp_path):
    copies = []
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):
        copies.append(tmp_path / path.name)
        shutil.copy(path, copies[-1])
    before = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in copies}
    assert main(["--write", *map(str, copies)]) == 0
    for path in copies:
        text = path.read_text(encoding="utf-8")
        notebook = json.loads(text)
        assert serialise(clean(json.loads(text))) == text, f"{path.name} is no longer clean"
        index = install_cell_index(notebook, path.name)
        first_code = next(i for i, c in enumerate(notebook["cells"]) if c["cell_type"] == "code")
        assert index == first_code
        assert "".join(notebook["cells"][index]["source"]) == install_cell()
        old = before[path.name]["cells"]
        assert [c for i, c in enumerate(notebook["cells"]) if i != index] == [
            c for i, c in enumerate(old) if i != index]
    assert main(["--check", *map(str, copies)]) == 0
    assert main(["--write", *map(str, copies)]) == 0  # idempotent
