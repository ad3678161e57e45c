"""The cpu profile's pieces: D2L_DATA_DIR, chapter 1's converted MiniLM and its run record, the
SNLI split tool and the collection of chapter records by tools/run_chapters.py."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    """A script in tools/ (a package) as a module."""
    return importlib.import_module(f"tools.{name}")


@pytest.fixture
def clean_env(monkeypatch):
    for var in ("D2L_PROFILE", "D2L_TINY", "D2L_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    return monkeypatch


def test_data_dir_comes_from_the_environment(clean_env, tmp_path):
    from d2l_utils.pages.notebook import banner_text
    from d2l_utils.profiles import ProfileError, data_dir

    assert data_dir() is None  # the hub
    clean_env.setenv("D2L_DATA_DIR", str(tmp_path))
    assert data_dir() == str(tmp_path)
    clean_env.setenv("D2L_PROFILE", "cpu")
    assert data_dir() == str(tmp_path)
    assert f"data {tmp_path} (D2L_DATA_DIR)" in banner_text(model="minilm-l6").splitlines()[0]
    clean_env.setenv("D2L_PROFILE", "tiny")  # tiny reads the fixtures and says so
    assert data_dir() is None
    assert "D2L_DATA_DIR is ignored" in banner_text()
    clean_env.setenv("D2L_PROFILE", "cpu")
    clean_env.setenv("D2L_DATA_DIR", str(tmp_path / "missing"))
    with pytest.raises(ProfileError, match="D2L_DATA_DIR.*no such folder"):
        data_dir()


def test_banner_states_profile_model_data_and_budget_in_one_line(clean_env):
    from d2l_utils.pages.notebook import banner_text

    clean_env.setenv("D2L_PROFILE", "cpu")
    first = banner_text(model="minilm-l6", budget="2 epochs", extra=1).splitlines()[0]
    assert first.startswith("Profile: CPU") and "model minilm-l6" in first
    assert "data the Hugging Face hub" in first and "budget 2 epochs" in first


def test_snli_split_writes_the_snli_layout(tmp_path):
    from d2l_utils.data import load_task_data
    from d2l_utils.tasks import get_task

    source = tmp_path / "dev.txt"
    labels = ["entailment", "neutral", "contradiction", "-"]
    rows = [f"{labels[i % 4]}\tA man number {i} sits .\tSomeone is sitting ." for i in range(40)]
    source.write_text("gold_label\tsentence1\tsentence2\n" + "\n".join(rows) + "\n")
    info = load_tool("snli_split").split_file(source, tmp_path / "data", dev=5, test=6, seed=0)
    assert info["sizes"] == {"test": 6, "dev": 5, "train": 19}  # the 10 '-' pairs are dropped
    data = load_task_data(get_task("snli"), data_dir=tmp_path / "data")
    assert {s: len(d) for s, d in data.items()} == {"train": 19, "validation": 5, "test": 6}
    assert json.loads((tmp_path / "data" / "SNLI" / "split.json").read_text())["seed"] == 0


def test_run_chapters_collects_records_with_provenance(tmp_path, monkeypatch):
    tool = load_tool("run_chapters")
    monkeypatch.setattr(tool, "RESULTS", tmp_path / "results")
    run_dir = tmp_path / "runs" / "ch06"
    for name, caps in [("sst2-full-s42", {}), ("sst2-lora-s1", {}), ("capped", {"max_steps": 2})]:
        folder = run_dir / "ch06" / name  # chapters write under D2L_OUTPUT_DIR/chNN/
        folder.mkdir(parents=True)
        (folder / "record.json").write_text(json.dumps({"task": "sst2", "caps": caps}))
    names = tool.collect(6, run_dir, {"chapter": 6, "command": "python tools/run_chapters.py"})
    assert names == ["sst2-full-s42", "sst2-lora-s1"]  # the capped rehearsal is no result
    record = json.loads((tmp_path / "results" / "ch06" / "sst2-full-s42.json").read_text())
    assert record["chapter_run"]["command"] == "python tools/run_chapters.py"
    assert sorted(tool.chapter_notebooks()) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_chapter_one_converts_minilm_and_writes_a_record(tmp_path, clean_env):
    from datasets import Dataset

    from d2l_utils.pages.records import best_and_last, committed_records
    from d2l_utils.scratch.assets import bert_config, pretrained_or_random_bert
    from d2l_utils.scratch.snli import SNLIBERTDataset
    from d2l_utils.scratch.training import write_record

    config = bert_config("minilm-l6")
    assert (config.num_layers, config.num_hiddens) == (6, 384)
    chapter = pretrained_or_random_bert("minilm-l6", [], None, verbose=False)
    assert chapter.pretrained and len(chapter.vocab) == 30_522
    assert chapter.tokenize("Unbelievably good.")[:2] == ["un", "##bel"]  # WordPiece pieces
    pairs = Dataset.from_dict({"premise": ["A man rides a bicycle ."],
                               "hypothesis": ["A person is outside ."], "label": [0]})
    encoded = SNLIBERTDataset(pairs, chapter.vocab, 16, tokenize=chapter.tokenize)
    (tokens, segments, valid_len), _ = encoded[0]
    assert tokens[0] == 101 and int(valid_len) == 14  # [CLS] 6 [SEP] 5 [SEP]: WordPiece ids
    history = {"epoch": [1, 2], "train_loss": [0.9, 0.7], "test_acc": [0.74, 0.72],
               "seconds": [10.0, 10.0], "examples_per_sec": [5.0, 5.0], "device": "CPU"}
    clean_env.setenv("D2L_PROFILE", "cpu")
    write_record(history, str(tmp_path / "ch01" / "snli-minilm-l6"), model="minilm-l6",
                 pretrained=True, eval_split="test", train_examples=50, eval_examples=20,
                 settings={"lr": 5e-5}, trainable=10)
    record = json.loads((tmp_path / "ch01" / "snli-minilm-l6" / "record.json").read_text())
    assert record["profile"] == "cpu" and record["main_metric"]["value"] == 0.72
    assert best_and_last(record) == (0.74, 0.72)
    assert [r["task"] for r in committed_records(results_dir=tmp_path)] == ["snli"]


def test_chapter_header_time_comes_from_the_records(tmp_path, monkeypatch):
    from d2l_utils.pages import records
    from d2l_utils.pages.time_budget import measured_time_text

    monkeypatch.setattr(records, "RESULTS_DIR", tmp_path)
    assert "no measured run" in measured_time_text(6)
    folder = tmp_path / "ch06"
    folder.mkdir()
    (folder / "a.json").write_text(json.dumps({"task": "sst2", "profile": "cpu",
                                               "wall_time_s": 600.0}))
    manifest = {"records": ["a"], "hardware": {"cpu": "Test CPU", "cores": 2},
                "stopped": "stopped by hand after 1 of 2 runs; more"}
    (folder / "chapter.json").write_text(json.dumps(manifest))
    text = measured_time_text(6)
    assert "MEASURED 10 min on Test CPU (2 cores)" in text and "partial (1 runs" in text


def test_run_chapters_kills_its_kernel_on_sigterm(tmp_path):
    """SIGTERM while a cell runs: the tool kills its kernel, stops, and exits with 128 + 15 in
    seconds (nbclient alone asks the busy kernel to shut down, and the kernel outlives the tool)."""
    import signal
    import subprocess
    import time

    import nbformat
    import psutil

    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    pid_file = tmp_path / "kernel.pid"
    cell = (f"import os, time\nwith open({str(pid_file)!r}, 'w') as f:\n"
            "    f.write(str(os.getpid()))\ntime.sleep(600)")
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)]),
                   notebooks / "01_sleeps.ipynb")
    script = (f"import sys, pathlib\nsys.path.insert(0, {str(ROOT / 'tools')!r})\n"
              "import run_chapters as tool\n"
              f"tool.NOTEBOOKS = pathlib.Path({str(notebooks)!r})\n"
              f"sys.exit(tool.main(['--chapters', '1', '--no-collect', '--output-dir', "
              f"{str(tmp_path / 'out')!r}]))")
    tool = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + 180
    while not (pid_file.is_file() and pid_file.read_text()):
        assert tool.poll() is None, tool.communicate()[0]
        assert time.monotonic() < deadline, "the kernel never ran the cell"
        time.sleep(0.2)
    kernel = psutil.Process(int(pid_file.read_text()))
    tool.send_signal(signal.SIGTERM)
    try:
        output, _ = tool.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        tool.kill()
        kernel.kill()
        pytest.fail("run_chapters ignored SIGTERM")
    assert tool.returncode == 128 + signal.SIGTERM, output
    assert "stopped by SIGTERM" in output
    kernel.wait(timeout=10)  # a kernel still alive raises TimeoutExpired here
    assert not kernel.is_running()
