"""The Results page and the chapters' result cells: reading results/records/chNN/, best and last
evaluation, the method x task table, the noise table, and the page's cells with and without
records."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import matplotlib
import pandas as pd
import pytest

from d2l_utils.pages import records as records_module
from d2l_utils.pages.plots import plot_comparison, records_table
from d2l_utils.pages.records import (
    best_and_last,
    chapter_manifest,
    chapter_time_minutes,
    committed_records,
)
from d2l_utils.pages.results import compare_methods, pivot_table, show_table
from d2l_utils.stats import welch_p

matplotlib.use("Agg")
ROOT = Path(__file__).resolve().parent.parent
METRIC = {"sst2": "accuracy", "cola": "matthews_correlation", "stsb": "pearson",
          "snli": "accuracy"}
DEV = {"sst2": 872, "cola": 1043, "stsb": 1500, "snli": 1000}


def make_record(task: str, method: str, values: list[float], *, seed: int = 42,
                chapter: int = 6, trainable: int = 74_498, r: int | None = None,
                split: str = "validation", **extra) -> dict:
    """A record with the keys tools/run_chapters.py writes; `values` are the evaluations."""
    name = METRIC[task]
    evals = [{"step": 100 * (i + 1), "epoch": float(i + 1), split: {name: v, "loss": 0.5}}
             for i, v in enumerate(values)]
    config = {"method": method, "head": "train", "pooler": "train", "backend": "peft"}
    if r is not None:
        config["r"] = r
    record = {
        "task": task, "method": method, "model": "minilm-l6", "profile": "cpu", "caps": {},
        "data": {"source": "DATA", "train_examples": 4000, "eval_examples": {split: DEV[task]}},
        "main_metric": {"name": name, "split": split, "value": values[-1]},
        "metrics": {split: {name: values[-1], "loss": 0.5}},
        "history": [{"epoch": e["epoch"], "step": e["step"], "train_loss": 0.6, split: e[split]}
                    for e in evals],
        "eval_log": evals,
        "params": {"total": 22_713_986, "trainable": trainable, "method_params": trainable - 770,
                   "head_params": 770, "trainable_percent": 100 * trainable / 22_713_986},
        "method_config": config, "seed": seed, "epochs_run": float(len(values)),
        "wall_time_s": 120.0, "train_time_s": 100.0, "train_examples_per_s": 40.0,
        "peak_memory_mb": 900.0, "device": "CPU (x86_64, 2 threads)",
        "versions": {"torch": "2.13.0+cpu", "transformers": "4.57.6"},
        "command": "ipykernel_launcher.py", "finished_at": "2026-12-01T18:56:29+0000",
        "chapter_run": {
            "chapter": chapter, "notebook": f"notebooks/0{chapter}_x.ipynb",
            "command": "python tools/run_chapters.py --profile cpu --data-dir DATA",
            "profile": "cpu", "data_dir": "DATA", "started": "2026-12-01T18:00:00+00:00",
            "hardware": {"cpu": "Test CPU", "cores": 2, "gpu": None},
            "versions": {"torch": "2.13.0+cpu"}, "notebook_wall_time_s": 1800.0,
            "load_average_1min": {"before": 1.5, "after": 2.5}},
    }
    record.update(extra)
    return record


def write(results: Path, chapter: int, name: str, record: dict) -> Path:
    path = results / f"ch{chapter:02d}" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record))
    return path


def write_manifest(results: Path, chapter: int, wall: float | None = 1800.0) -> None:
    folder = results / f"ch{chapter:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.stem for p in folder.glob("*.json") if p.name != "chapter.json")
    (folder / "chapter.json").write_text(json.dumps({
        "chapter": chapter, "notebook": f"notebooks/0{chapter}_x.ipynb", "command": "c",
        "profile": "cpu", "data_dir": "DATA", "started": "2026-12-01T18:00:00+00:00",
        "notebook_wall_time_s": wall, "hardware": {"cpu": "Test CPU", "cores": 2, "gpu": None},
        "records": names}))


def chapter1_record() -> dict:
    """Chapter 1's record as scratch/training.write_record writes it: step None, split test."""
    record = make_record("snli", "full", [0.61, 0.66, 0.64], chapter=1, split="test",
                         trainable=22_714_371, settings={"seed": 0})
    for entry in record["eval_log"]:
        entry["step"] = None
    record["history"] = record["eval_log"]
    record["method_config"] = {"name": "full"}
    record["params"] = {"trainable": 22_714_371, "total": 22_714_371, "trainable_percent": 100.0}
    del record["seed"], record["peak_memory_mb"]
    return record


@pytest.fixture
def results(tmp_path):
    """A small records folder: chapters 1 to 6, three seeds for two SST-2 methods."""
    root = tmp_path / "records"
    write(root, 1, "snli-minilm-l6", chapter1_record())
    write(root, 2, "cola-recipe", make_record("cola", "full", [0.30, 0.41, 0.38], chapter=2))
    write(root, 2, "cola-best", make_record("cola", "full", [0.35, 0.44], chapter=2))
    for method in ("freeze", "lora", "prefix"):
        write(root, 3, method, make_record("snli", method, [0.55, 0.60], chapter=3))
    for method in ("prompt-tuning", "ptuning-v2"):
        write(root, 4, f"{method}-minilm-l6", make_record("sst2", method, [0.6, 0.7], chapter=4))
    for r in (2, 8, 64):
        for task in ("cola", "stsb"):
            write(root, 5, f"{task}-lorar{r}",
                  make_record(task, "lora", [0.2, 0.3 + r / 1000], chapter=5, r=r))
    for seed, full, lora in [(42, 0.86, 0.84), (1, 0.87, 0.83), (2, 0.85, 0.85)]:
        write(root, 6, f"sst2-full-s{seed}",
              make_record("sst2", "full", [full - 0.02, full, full - 0.01], seed=seed,
                          trainable=22_713_986))
        write(root, 6, f"sst2-lora-s{seed}",
              make_record("sst2", "lora", [lora - 0.01, lora], seed=seed, r=8))
    write(root, 6, "sst2-bitfit-s42", make_record("sst2", "bitfit", [0.80, 0.79],
                                                  trainable=26_114))
    write(root, 6, "cola-full-s42", make_record("cola", "full", [0.40, 0.45, 0.43],
                                                trainable=22_713_986))
    write(root, 6, "cola-lora-s42", make_record("cola", "lora", [0.10, 0.20], r=8))
    write(root, 6, "stsb-full-s42", make_record("stsb", "full", [0.70, 0.80],
                                                trainable=22_713_601))
    for chapter in (1, 2, 3, 4, 6):  # chapter 5 without a manifest
        write_manifest(root, chapter)
    return root


def test_records_are_read_from_every_chapter_folder(results):
    everything = committed_records(results_dir=results)
    assert len(everything) == 1 + 2 + 3 + 2 + 6 + 10
    files = [r["record_file"] for r in everything]
    assert files == sorted(files) and "ch06/sst2-full-s42.json" in files
    assert not any(f.endswith("chapter.json") for f in files)
    assert [r["record_file"] for r in committed_records("sst2-full-*", results)] == [
        "ch06/sst2-full-s1.json", "ch06/sst2-full-s2.json", "ch06/sst2-full-s42.json"]
    assert {r["record_file"] for r in committed_records("cola-*", results, chapter=2)} == {
        "ch02/cola-recipe.json", "ch02/cola-best.json"}
    assert [r["task"] for r in committed_records(results_dir=results, chapter=1)] == ["snli"]
    assert committed_records(results_dir=results, chapter=7) == []
    assert committed_records(results_dir=results / "missing") == []


def test_capped_and_tiny_records_are_refused(results):
    write(results, 6, "sst2-prefix-s42", make_record("sst2", "prefix", [0.7],
                                                     caps={"max_steps": 2}))
    with pytest.raises(ValueError, match=r"sst2-prefix-s42.json: a rehearsal run, capped"):
        committed_records(results_dir=results, chapter=6)
    assert len(committed_records("cola-*", results, chapter=6)) == 2  # not matched: not read
    write(results, 6, "sst2-prefix-s42", make_record("sst2", "prefix", [0.7], profile="tiny"))
    with pytest.raises(ValueError, match="tiny-profile smoke run is not a result"):
        committed_records(results_dir=results)


def test_chapter_manifest_and_time(results):
    assert chapter_manifest(6, results)["records"][0] == "cola-full-s42"
    assert chapter_manifest(5, results) is None and chapter_manifest(9, results) is None
    assert chapter_time_minutes(6, results) == 30.0  # the notebook's wall time
    assert chapter_time_minutes(5, results) == 12.0  # no manifest: 6 records x 120 s
    assert chapter_time_minutes(9, results) is None
    write_manifest(results, 3, wall=None)
    assert chapter_time_minutes(3, results) == 6.0  # manifest without a time: 3 x 120 s


def test_best_and_last():
    record = make_record("sst2", "full", [0.80, 0.86, 0.84])
    assert best_and_last(record) == (0.86, 0.84)
    del record["eval_log"]
    assert best_and_last(record) == (0.86, 0.84)  # from the history
    record["history"] = []
    assert best_and_last(record) == (0.84, 0.84)  # from main_metric alone
    assert best_and_last(chapter1_record()) == (0.66, 0.64)  # steps are None, split test
    nan = make_record("stsb", "lora", [0.5, float("nan"), 0.4])
    assert best_and_last(nan) == (0.5, 0.4)
    # evaluations between epochs (eval_log) and at epoch ends (history) count alike: chapter 3's
    # LoRA peaked at an epoch's end, which the best once missed
    split = make_record("snli", "lora", [0.659, 0.743, 0.763])
    split["history"] = [{"epoch": e, "step": 246 * e, "validation": {"accuracy": v}}
                        for e, v in [(1, 0.71), (2, 0.765), (3, 0.764)]]
    split["main_metric"]["value"] = 0.764
    assert best_and_last(split) == (0.765, 0.764)


def test_records_table_has_best_last_and_seed(results):
    table = records_table(committed_records(results_dir=results, chapter=6))
    row = table[table["run"] == "sst2-full-s1"].iloc[0]
    assert (row["best"], row["last"], row["value"], row["seed"]) == (0.87, 0.86, 0.86, 1)
    chapter1 = records_table(committed_records(results_dir=results, chapter=1)).iloc[0]
    assert chapter1["seed"] == 0 and chapter1["best"] == 0.66 and chapter1["last"] == 0.64


def test_pivot_table(results):
    pivot = pivot_table(committed_records(results_dir=results, chapter=6))
    assert list(pivot.columns) == ["method", "SST-2 accuracy", "CoLA MCC", "STS-B Pearson"]
    assert isinstance(pivot.index, pd.RangeIndex)
    assert list(pivot["method"]) == ["full", "bitfit", "lora r=8"]  # the library's order
    full = pivot.set_index("method").loc["full"]
    bests = [0.86, 0.87, 0.85]
    assert full["SST-2 accuracy"] == (f"{statistics.mean(bests):.3f} ± "
                                      f"{statistics.stdev(bests):.3f} (n=3)")
    assert re.fullmatch(r"0\.\d{3} ± 0\.\d{3} \(n=3\)", full["SST-2 accuracy"])
    assert full["CoLA MCC"] == "0.450 / 0.430" and full["STS-B Pearson"] == "0.800 / 0.800"
    bitfit = pivot.set_index("method").loc["bitfit"]
    assert bitfit["SST-2 accuracy"] == "0.800 / 0.790" and bitfit["CoLA MCC"] == ""
    html = show_table(pivot).to_html()
    assert "SST-2 accuracy" in html and "row_heading" not in html  # no index column


def with_predictions(record: dict, correct: int, n: int = 872) -> dict:
    """`record` with per-example predictions: the first `correct` of `n` right."""
    labels = [i % 2 for i in range(n)]
    predictions = [y if i < correct else 1 - y for i, y in enumerate(labels)]
    record["predictions"] = {"validation": {"predictions": predictions, "labels": labels}}
    record["main_metric"]["value"] = correct / n
    return record


def test_comparison_table_tests_gaps_on_the_paired_dev_examples():
    runs = [with_predictions(make_record("sst2", "full", [0.85]), 741),
            with_predictions(make_record("sst2", "lora", [0.85], r=8), 737),
            with_predictions(make_record("sst2", "prompt-tuning", [0.75]), 654)]
    table = compare_methods(runs, "sst2", adjacent=False)
    verdict = {(row["method A"], row["method B"]): row for _, row in table.iterrows()}
    close = verdict["full", "lora r=8"]  # 4 of 872 sentences: half a point
    assert close["gap (points)"] == round(100 * 4 / 872, 2)
    assert close["p, dev examples"] > 0.05 and close["tell apart?"] == "cannot tell apart"
    assert close["p, seeds"] is None or pd.isna(close["p, seeds"])  # one seed each
    far = verdict["full", "prompt-tuning"]
    assert far["p, dev examples"] < 0.01 and far["tell apart?"] == "yes"
    low, high = (float(x) for x in far["95% interval (points)"].split(" to "))
    assert 0 < low < far["gap (points)"] < high
    assert len(compare_methods(runs, "sst2")) == 2  # adjacent pairs only
    assert compare_methods(runs, "cola").empty
    gains = compare_methods(runs, "sst2", baseline="prompt-tuning")
    assert list(zip(gains["method A"], gains["method B"])) == [("full", "prompt-tuning"),
                                                              ("lora r=8", "prompt-tuning")]
    assert compare_methods(runs, "sst2", baseline="head only").empty  # no baseline run
    unpaired = compare_methods([make_record("sst2", "full", [0.85]),
                                make_record("sst2", "bitfit", [0.70])], "sst2")
    assert unpaired.iloc[0]["tell apart?"] == "unknown"  # no predictions, one seed: no test
    # two runs of one method (chapter 2's recipe and best-of-search runs) named by the caller
    two_full = [runs[0], with_predictions(make_record("sst2", "full", [0.75]), 654)]
    assert compare_methods(two_full, "sst2").empty  # one method, one group: nothing to compare
    named = compare_methods(two_full, "sst2", labels=["recipe", "tuned"]).iloc[0]
    assert (named["method A"], named["method B"], named["tell apart?"]) == (
        "recipe", "tuned", "yes")


def test_comparison_table_uses_the_seeds(results):
    table = compare_methods(committed_records(results_dir=results, chapter=6), "sst2")
    row = table[(table["method A"] == "full") & (table["method B"] == "lora r=8")].iloc[0]
    lasts_full, lasts_lora = [0.85, 0.86, 0.84], [0.84, 0.83, 0.85]
    assert row["p, seeds"] == round(welch_p(lasts_full, lasts_lora), 3)
    assert row["gap (points)"] == 1.0 and row["task"] == "SST-2"
    assert row["tell apart?"] == "cannot tell apart"  # p = 0.29 from three seeds


def test_plot_comparison_fits_the_page(results):
    fig = plot_comparison(committed_records(results_dir=results, chapter=6))
    assert fig.get_size_inches()[0] <= 10.5 and len(fig.axes) == 3
    sizes = [t.get_fontsize() for ax in fig.axes for t in ax.texts]
    assert sizes and min(sizes) >= 9
    matplotlib.pyplot.close(fig)


def page_cells(path: Path) -> list[str]:
    """The code cells of a MyST notebook page."""
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", path.read_text(), flags=re.S)
    return ["\n".join(line for line in cell.splitlines() if not line.startswith(":"))
            for cell in cells]


def run_page(monkeypatch, records_dir: Path, capsys) -> str:
    monkeypatch.setattr(records_module, "RESULTS_DIR", records_dir)
    namespace: dict = {}
    for cell in page_cells(ROOT / "book" / "results.md"):
        exec(compile(cell, "book/results.md", "exec"), namespace)
    matplotlib.pyplot.close("all")
    return capsys.readouterr().out


def test_results_page_runs_without_records(monkeypatch, tmp_path, capsys):
    out = run_page(monkeypatch, tmp_path / "records", capsys)
    lines = out.strip().splitlines()
    cells = page_cells(ROOT / "book" / "results.md")
    assert len(lines) == len(cells) == 10  # one line a cell
    assert all(line.startswith("No records in results/records") and
               "python tools/run_chapters.py --profile cpu" in line for line in lines)


def test_results_page_runs_on_records(monkeypatch, results, capsys):
    out = run_page(monkeypatch, results, capsys)
    assert "No records" not in out
    assert "records from 6 chapter folders" in out
