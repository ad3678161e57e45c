"""tools/colab_check.py: the Colab install cell's requirements against Colab's package set."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tools import colab_check
from tools.colab_check import (
    check,
    constraints_for,
    find_uv,
    parse_freeze,
    parse_requirements,
    parse_resolution,
    uv_config,
)

ROOT = Path(__file__).resolve().parent.parent
# Colab's GPU runtime, as googlecolab/backend-info publishes it (the file's first line says which)
COLAB_FREEZE = ROOT / "tests" / "data" / "colab-gpu-pip-freeze.txt"

FREEZE = """\
# Google Colab GPU runtime, pip freeze
# google-colab (installed from a direct reference, not from the package index)
accelerate==1.14.0
en_core_web_sm @ https://github.com/explosion/spacy-models/releases/download/en_core_web_sm-3.8.0/en_core_web_sm-3.8.0-py3-none-any.whl
google-colab @ file:///colabtools/dist/google_colab-1.0.0.tar.gz
-e git+https://github.com/example/tool.git@0123abc#egg=some_tool
huggingface_hub==1.27.0
numpy==2.1.3
setuptools==75.2.0
torch==2.11.0+cu128
torchvision==0.26.0+cu128
tqdm==4.67.3
"""

REQUIREMENTS = """\
# a comment line
transformers==4.57.6  # adapters needs it
huggingface-hub==0.36.2  # transformers needs <1.0
setuptools<81  # pkg_resources
"""


def test_freeze_parsing():
    freeze = parse_freeze(FREEZE)
    assert freeze.versions["torch"] == "2.11.0" and freeze.versions["torchvision"] == "0.26.0"
    assert freeze.local == {"torch": "2.11.0+cu128", "torchvision": "0.26.0+cu128"}
    assert freeze.versions["huggingface-hub"] == "1.27.0"  # canonical names
    assert freeze.spelled["huggingface-hub"] == "huggingface_hub"
    assert set(freeze.unversioned) == {"en_core_web_sm", "google-colab", "some_tool"}
    for name in ("en-core-web-sm", "google-colab", "some-tool"):
        assert name not in freeze.versions
    with pytest.raises(ValueError, match="not a pip freeze line"):
        parse_freeze("just some words\n")


def test_constraints_keep_colab_unless_the_file_needs_another_version():
    freeze = parse_freeze(FREEZE)
    pins = parse_requirements(REQUIREMENTS)
    assert [p.reason for p in pins] == ["adapters needs it", "transformers needs <1.0",
                                        "pkg_resources"]
    constraints = constraints_for(freeze, pins)
    assert "huggingface_hub==1.27.0" not in constraints  # pinned to another version
    assert "setuptools==75.2.0" in constraints  # 75.2.0 satisfies <81: pip keeps it
    assert "torch==2.11.0" in constraints and "numpy==2.1.3" in constraints
    assert not any("+" in line for line in constraints)
    config = uv_config(freeze)
    assert 'name = "torch"\nversion = "2.11.0"\nrequires-dist = []' in config
    assert "numpy" not in config


def fake_resolution(lines: list[str], returncode: int = 0, stderr: str = ""):
    def resolve(requirements, constraints, config):
        return subprocess.CompletedProcess(["uv"], returncode, "\n".join(lines) + "\n", stderr)
    return resolve


@pytest.fixture
def files(tmp_path):
    freeze, requirements = tmp_path / "freeze.txt", tmp_path / "requirements.txt"
    freeze.write_text(FREEZE)
    requirements.write_text(REQUIREMENTS)
    return freeze, requirements


RESOLVED_OK = [
    "huggingface-hub==0.36.2   # via transformers, -r requirements.txt",
    "numpy==2.1.3              # via transformers, -c constraints.txt",
    "safetensors==0.8.0        # via transformers",
    "setuptools==75.2.0        # via -c constraints.txt, -r requirements.txt",
    "tqdm==4.67.3              # via huggingface-hub, transformers, -c constraints.txt",
    "transformers==4.57.6      # via -r requirements.txt",
]


def test_changes_are_listed_with_reasons(files, capsys):
    assert check(*files, resolve=fake_resolution(RESOLVED_OK)) == 0
    out = capsys.readouterr().out
    assert "huggingface-hub  1.27.0 -> 0.36.2" in out and "transformers needs <1.0" in out
    assert "safetensors" in out and "new: 0.8.0" in out and "via transformers <- " in out
    assert "numpy 2.1.3" in out.splitlines()[-1] and out.splitlines()[-1].startswith("OK")
    assert "setuptools " not in out and "tqdm" not in out  # unchanged


def test_a_protected_package_changed_fails_naming_the_chain(files, capsys):
    resolved = [line.replace("numpy==2.1.3 ", "numpy==2.4.6 ").replace(
        "-c constraints.txt", "") for line in RESOLVED_OK]
    assert parse_resolution("\n".join(resolved))["numpy"].version == "2.4.6"
    assert check(*files, resolve=fake_resolution(resolved)) == 1
    out = capsys.readouterr().out
    assert "FAIL: numpy 2.1.3 -> 2.4.6" in out
    assert "numpy <- transformers <- requirements.txt" in out.replace(
        colab_check.REQUIREMENTS.name, "requirements.txt")


def test_a_new_protected_package_fails_too(files, capsys):
    resolved = RESOLVED_OK + ["psutil==7.2.2             # via transformers"]
    assert check(*files, resolve=fake_resolution(resolved)) == 1
    assert "FAIL: psutil (not installed) -> 7.2.2" in capsys.readouterr().out


def test_no_resolution_names_the_blocking_colab_version(files, capsys):
    stderr = ("error: No solution found when resolving dependencies\n"
              "  cause: Because transformers==4.57.6 depends on numpy>=2.4 and numpy==2.1.3, we "
              "can conclude that transformers==4.57.6 cannot be used.\n")
    assert check(*files, resolve=fake_resolution([], 1, stderr)) == 1
    out = capsys.readouterr().out
    assert "depends on numpy>=2.4" in out
    assert "Offender: Colab's numpy==2.1.3" in out and "leaves to Colab" in out


def test_uv_failing_for_another_reason_is_not_a_verdict(files, capsys):
    assert check(*files, resolve=fake_resolution([], 2, "error: Failed to fetch: dns error")) == 2
    assert "could not run" in capsys.readouterr().err


def test_missing_uv_says_how_to_get_it(files, capsys, monkeypatch):
    monkeypatch.setattr(colab_check, "find_uv", lambda: None)
    assert check(*files) == 2
    assert "pip install uv" in capsys.readouterr().err


def test_the_requirements_file_parses():
    pins = parse_requirements(colab_check.REQUIREMENTS.read_text())
    names = {p.name for p in pins}
    assert {"transformers", "adapters", "peft", "datasets", "fastnlp"} <= names
    assert not names & {"numpy", "pandas", "matplotlib", "scipy", "scikit-learn", "torch",
                        "requests", "psutil"}
    assert all(p.reason for p in pins), "every requirement says why it is there"


def test_against_the_real_colab_freeze(capsys):
    if find_uv() is None:
        pytest.skip(colab_check.UV_MISSING)
    if not COLAB_FREEZE.is_file():
        pytest.skip(f"{COLAB_FREEZE} not found")
    code = check(COLAB_FREEZE)
    captured = capsys.readouterr()
    if code == 2:
        pytest.skip("uv could not reach the package registry: " + captured.err[-500:])
    assert code == 0, captured.out + captured.err
    assert "huggingface-hub" in captured.out and "transformers" in captured.out
