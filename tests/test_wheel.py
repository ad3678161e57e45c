"""A non-editable install works: the wheel carries every subpackage, the shipped configs and the
fixture files, and one tiny training runs from it (outside the repository)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def copy_sources(target: Path) -> Path:
    """What the wheel is built from, copied, so that setuptools writes `build/` and
    `*.egg-info` there and not in the checkout."""
    target.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, target / name)
    shutil.copytree(REPO / "d2l_utils", target / "d2l_utils",
                    ignore=shutil.ignore_patterns("__pycache__"))
    return target


def test_wheel_installs_and_trains(tmp_path):
    dist, site = tmp_path / "dist", tmp_path / "site"
    before = {p.name for p in REPO.iterdir()}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(dist), str(copy_sources(tmp_path / "src"))], check=True,
                   cwd=tmp_path)
    new = {p.name for p in REPO.iterdir()} - before  # (another worker may be building the book)
    assert not {n for n in new if n in ("build", "dist") or n.endswith(".egg-info")}, new
    wheel = next(dist.glob("d2l_utils-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for expected in ("d2l_utils/training/loop.py", "d2l_utils/scratch/bert.py",
                     "d2l_utils/pages/plots.py", "d2l_utils/configs/tiny-bert.json",
                     "d2l_utils/figures/lora.svg",
                     "d2l_utils/fixtures/data/SST-2/train.tsv",
                     "d2l_utils/fixtures/data/SNLI/snli_1.0_test.jsonl"):
        assert expected in names, expected
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target",
                    str(site), str(wheel)], check=True, cwd=tmp_path)
    env = {**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1",
           "HF_DATASETS_OFFLINE": "1"}
    env.pop("D2L_OUTPUT_DIR", None)
    out = tmp_path / "run"
    code = ("import d2l_utils, sys; print(d2l_utils.__file__); "
            "from d2l_utils.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", code, "train", "--tiny", "--task", "sst2",
                             "--method", "lora", "--max-steps", "2", "--output-dir", str(out),
                             "--no-progress"], cwd=tmp_path, env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.splitlines()[0].startswith(str(site))  # the wheel, not the repo
    assert json.loads((out / "record.json").read_text())["steps"] == 2
