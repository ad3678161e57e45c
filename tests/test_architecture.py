"""The package's shape: no import cycles (imports inside functions count too) and a pipeline that
never imports the presentation (`pages/`) or chapter-1 (`scratch/`) subpackages."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "d2l_utils"
LAYERS_ABOVE_PIPELINE = ("d2l_utils.pages", "d2l_utils.scratch")


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the package modules it imports anywhere in its body (lazy imports included)."""
    modules = {module_name(p, root): p for p in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        package = name if is_package else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                # `from pkg import mod` imports the submodule when there is one
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base
                           for a in node.names]
            edges.update(t for t in targets if t in modules and t != name)
        graph[name] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start)):
            return found
    return None


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    """Imports from the pipeline into pages/ or scratch/."""
    def above(module: str) -> bool:
        return any(module == p or module.startswith(p + ".") for p in LAYERS_ABOVE_PIPELINE)

    return sorted(f"{a} -> {b}" for a, targets in graph.items() if not above(a)
                  for b in targets if above(b))


def test_no_import_cycle_in_the_package():
    assert find_cycle(import_graph(PACKAGE)) is None


def test_the_pipeline_does_not_import_pages_or_scratch():
    assert layer_violations(import_graph(PACKAGE)) == []


def test_a_planted_lazy_cycle_and_a_layer_breach_are_found(tmp_path):
    """The checks can fail: a function-level import that closes a cycle, and the training
    pipeline reaching into the presentation layer."""
    copy = tmp_path / "d2l_utils"
    shutil.copytree(PACKAGE, copy, ignore=shutil.ignore_patterns("__pycache__", "data"))
    tasks = copy / "tasks.py"
    tasks.write_text(tasks.read_text() + "\n\ndef _planted():\n    from .data import load_task_data"
                     "\n    return load_task_data\n")
    cycle = find_cycle(import_graph(copy))
    assert cycle is not None and "d2l_utils.tasks" in cycle and "d2l_utils.data" in cycle
    record = copy / "training" / "record.py"
    record.write_text(record.read_text() + "\n\ndef _planted():\n"
                      "    from ..pages.plots import plot_training\n    return plot_training\n")
    assert "d2l_utils.training.record -> d2l_utils.pages.plots" in layer_violations(
        import_graph(copy))


@pytest.mark.parametrize("graph, expected", [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, None),
    ({"a": {"b"}, "b": {"a"}}, ["a", "b", "a"]),
])
def test_find_cycle_on_small_graphs(graph, expected):
    assert find_cycle(graph) == expected


def test_the_public_api_is_lazy_and_complete():
    """`import d2l_utils` loads no torch; nor do the options, the method registry and what the
    book pages import (each page is a fresh kernel at every build: torch, transformers and
    datasets would add seconds to each); every public name then resolves."""
    import subprocess
    import sys

    code = ("import sys, d2l_utils; assert 'torch' not in sys.modules; "
            "import d2l_utils.arguments, d2l_utils.hpo, d2l_utils.pages.results, "
            "d2l_utils.pages.time_budget, benchmarks.gpu_check_tables; "
            "heavy = {'torch', 'transformers', 'datasets'} & set(sys.modules); "
            "assert not heavy, heavy; "
            "[getattr(d2l_utils, n) for n in d2l_utils.__all__]; print(len(d2l_utils.__all__))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=PACKAGE.parent)
    assert out.returncode == 0 and out.stdout.strip() == "8", out.stderr[-2000:]


POSIX_ONLY = {"fcntl", "resource", "termios", "pwd", "grp"}


def module_level_imports(path: Path) -> set[str]:
    """Top-level module names imported when `path` is imported (not inside functions)."""
    names: set[str] = set()
    for node in ast.parse(path.read_text(), str(path)).body:
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_importable_on_windows():
    """Many learners run Jupyter on Windows: no module imports a POSIX-only module on import
    (a function may, behind a fallback)."""
    offenders = {str(p.relative_to(PACKAGE)): sorted(module_level_imports(p) & POSIX_ONLY)
                 for p in PACKAGE.rglob("*.py") if module_level_imports(p) & POSIX_ONLY}
    assert offenders == {}


def test_the_windows_check_finds_a_posix_import(tmp_path):
    planted = tmp_path / "m.py"
    planted.write_text("import os\nimport fcntl\n\ndef f():\n    import resource\n")
    assert module_level_imports(planted) & POSIX_ONLY == {"fcntl"}


def test_no_private_state_of_accelerate():
    """accelerate's private state (`AcceleratorState._shared_state`, `_reset_state()`) changes
    between versions without notice: the package uses its public API only."""
    import re

    private = re.compile(r"\b(AcceleratorState|PartialState|GradientState)(\(\))?\._")
    offenders = [str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                 if private.search(p.read_text())]
    assert offenders == []


def test_trains_where_fcntl_and_resource_do_not_exist(tmp_path):
    """As on Windows: with `fcntl` and `resource` unimportable, the package imports and a tiny run
    trains, takes its run-folder lock and writes its record."""
    code = textwrap.dedent(f"""
        import sys
        sys.modules["fcntl"] = sys.modules["resource"] = None  # `import fcntl` raises ImportError
        from d2l_utils.arguments import RunArguments
        from d2l_utils.training import train
        record = train(RunArguments(task="sst2", tiny=True, max_steps=2, progress=False,
                                    save_model=False, output_dir={str(tmp_path / "run")!r}))
        assert "fcntl" not in [m for m, v in sys.modules.items() if v is not None]
        print("steps", record["steps"])
    """)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "D2L_TINY": "1"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env,
                         cwd=PACKAGE.parent, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "steps 2" in out.stdout
    assert (tmp_path / "run" / "record.json").exists()
