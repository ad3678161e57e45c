"""`predict`: texts, files (with the record's metrics), GLUE test splits into submission files,
and the refusals (one `error:` line, nothing overwritten)."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from d2l_utils import Predictor
from d2l_utils.arguments import RunArguments, check_against_model
from d2l_utils.backbones import resolve_backbone
from d2l_utils.cli import main
from d2l_utils.data import read_input_file
from d2l_utils.fixtures import FIXTURES_DIR
from d2l_utils.methods import build_model
from d2l_utils.metrics import format_metrics
from d2l_utils.tasks import GLUE_TASKS, get_task
from d2l_utils.training import train
from d2l_utils.training.saving import save_trainable

# The leaderboard's files and the values it takes, written out here independently of tasks.py.
NAMES3, NAMES2 = {"entailment", "neutral", "contradiction"}, {"entailment", "not_entailment"}
SUBMISSIONS = {
    "cola": {"CoLA.tsv": {"0", "1"}}, "sst2": {"SST-2.tsv": {"0", "1"}},
    "mrpc": {"MRPC.tsv": {"0", "1"}}, "qqp": {"QQP.tsv": {"0", "1"}},
    "wnli": {"WNLI.tsv": {"0", "1"}}, "stsb": {"STS-B.tsv": None},
    "qnli": {"QNLI.tsv": NAMES2}, "rte": {"RTE.tsv": NAMES2},
    "mnli": {"MNLI-m.tsv": NAMES3, "MNLI-mm.tsv": NAMES3, "AX.tsv": NAMES3},
}
TEST_FILES = {"MNLI-m.tsv": "MNLI/test_matched.tsv", "MNLI-mm.tsv": "MNLI/test_mismatched.tsv",
              "AX.tsv": "diagnostic/diagnostic.tsv"}


def _run(folder: Path, task: str, method: str = "full", **options) -> Path:
    train(RunArguments(task=task, method=method, tiny=True, output_dir=str(folder),
                       progress=False, **options), verbose=False)
    return folder


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("runs") / "sst2", "sst2", max_steps=6, lr=1e-3)


@pytest.fixture(scope="module")
def stsb_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("runs") / "stsb", "stsb", "lora", max_steps=4)


def untrained_run(folder: Path, task: str) -> Path:
    """A run folder of `task` with tiny-bert's random weights, without training (seconds)."""
    args = check_against_model(RunArguments(task=task, tiny=True, output_dir=str(folder)))
    model = build_model(resolve_backbone(args.model), get_task(task), args.method_config())
    save_trainable(model, folder, asdict(args), include_frozen=True)
    return folder


def cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    return code, out, err


# ---------------------------------------------------------------------------------------------
# Files, texts, the Python API


@pytest.fixture(scope="module")
def hf_trainer_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("runs") / "rte-hf", "rte", "bitfit", max_steps=3,
                trainer="hf")


@pytest.fixture(scope="module")
def fastnlp_run(tmp_path_factory) -> Path:
    return _run(tmp_path_factory.mktemp("runs") / "mnli-fastnlp", "mnli", "prompt-tuning",
                trainer="fastnlp", epochs=1, train_batches_per_epoch=2)


@pytest.mark.parametrize("run_name,dev,split", [
    ("sst2_run", "SST-2/dev.tsv", "validation"), ("stsb_run", "STS-B/dev.tsv", "validation"),
    ("hf_trainer_run", "RTE/dev.tsv", "validation"),
    ("fastnlp_run", "MNLI/dev_mismatched.tsv", "validation_mismatched")])
def test_input_file_prints_the_records_last_evaluation(request, capsys, tmp_path, run_name,
                                                        dev, split):
    run = request.getfixturevalue(run_name)
    record = json.loads((run / "record.json").read_text())
    out = tmp_path / "predictions.tsv"
    code, stdout, _ = cli(capsys, "--checkpoint", str(run), "--input", str(FIXTURES_DIR / dev),
                          "--output", str(out), "--progress", "false")
    assert code == 0
    metrics = {k: v for k, v in record["metrics"][split].items() if k != "loss"}
    assert f"{FIXTURES_DIR / dev}: {format_metrics(metrics)}" in stdout.splitlines()
    rows = out.read_text().splitlines()
    data = read_input_file(get_task(record["task"]), FIXTURES_DIR / dev)
    assert len(rows) == len(data) + 1
    assert rows[0] == ("index\tprediction" if record["task"] == "stsb"
                       else "index\tprediction\tprobability")


def test_predict_texts_match_the_file_in_row_order(sst2_run):
    predictor = Predictor.from_run(sst2_run)
    data = read_input_file(get_task("sst2"), FIXTURES_DIR / "SST-2/dev.tsv")
    batch = predictor.predictions(predictor.logits(data))  # length-ordered batches
    one_by_one = [predictor.predict(text)[0] for text in data["sentence"][:5]]
    for single, batched in zip(one_by_one, batch):
        assert single.label == batched.label in ("negative", "positive")
        assert single.probability == pytest.approx(batched.probability, abs=1e-5)
    assert len({round(p.probability, 6) for p in batch}) > 1, "rows differ, so order matters"


def test_cli_texts_and_pairs(capsys, sst2_run, stsb_run):
    code, out, _ = cli(capsys, "--checkpoint", str(sst2_run), "--text", "a fine film",
                       "a dull film")
    assert code == 0
    lines = out.splitlines()
    assert [line.split("\t")[2] for line in lines] == ["a fine film", "a dull film"]
    assert all(line.split("\t")[0] in ("negative", "positive") for line in lines)
    code, out, _ = cli(capsys, "--checkpoint", str(stsb_run), "--text", "A man sings.",
                       "A man is singing.")
    assert code == 0
    score, shown = out.strip().split("\t")
    assert float(score) == pytest.approx(Predictor.from_run(stsb_run).predict(
        ("A man sings.", "A man is singing."))[0].score, abs=1e-3)
    assert shown == "A man sings. | A man is singing."


def test_input_without_labels_and_with_our_column_names(capsys, tmp_path, sst2_run):
    plain = tmp_path / "plain.tsv"
    plain.write_text("sentence\na fine film\na dull film\n")
    code, out, err = cli(capsys, "--checkpoint", str(sst2_run), "--input", str(plain),
                         "--progress", "false")
    assert code == 0 and "accuracy" not in out + err
    assert out.splitlines()[0] == "index\tprediction\tprobability"
    assert len(out.splitlines()) == 3


# ---------------------------------------------------------------------------------------------
# Test splits: GLUE submission files for every task


@pytest.mark.parametrize("task", GLUE_TASKS)
def test_split_test_writes_glue_submission_files(capsys, tmp_path, task):
    run = untrained_run(tmp_path / "run", task)
    code, out, err = cli(capsys, "--checkpoint", str(run), "--split", "test", "--tiny",
                         "--progress", "false")
    assert code == 0, err
    folder = run / "submission"
    assert sorted(p.name for p in folder.iterdir()) == sorted(SUBMISSIONS[task])
    for name, vocabulary in SUBMISSIONS[task].items():
        rows = (folder / name).read_text().splitlines()
        test_file = FIXTURES_DIR / TEST_FILES.get(name, f"{get_task(task).glue_dir}/test.tsv")
        source = test_file.read_text().splitlines()
        assert rows[0] == "index\tprediction"
        assert len(rows) == len(source)  # one prediction per example, headers on both
        assert [r.split("\t")[0] for r in rows[1:]] == [s.split("\t")[0] for s in source[1:]]
        values = [r.split("\t")[1] for r in rows[1:]]
        if vocabulary is None:
            assert all(np.isfinite(float(v)) and len(v.split(".")[1]) == 3 for v in values)
        else:
            assert set(values) <= vocabulary
        assert f"wrote {folder / name}" in out


def test_split_test_reads_a_glue_folder(capsys, tmp_path, glue_dir):
    run = untrained_run(tmp_path / "run", "mnli")
    out_dir = tmp_path / "glue-submission"
    code, _, err = cli(capsys, "--checkpoint", str(run), "--split", "test", "--data-dir",
                       str(glue_dir), "--output", str(out_dir))
    assert code == 0, err
    assert sorted(p.name for p in out_dir.iterdir()) == ["AX.tsv", "MNLI-m.tsv", "MNLI-mm.tsv"]


# ---------------------------------------------------------------------------------------------
# Refusals: one line, no traceback, nothing overwritten


def refused(capsys, code_wanted: int, *argv: str) -> str:
    code, out, err = cli(capsys, *argv)
    assert code == code_wanted, err
    assert "Traceback" not in err and err.count("\n") == 1 and err.startswith("error: ")
    return err


def test_refusals(capsys, tmp_path, sst2_run, stsb_run):
    assert "not a run directory" in refused(capsys, 1, "--checkpoint", str(tmp_path),
                                            "--text", "a film")
    err = refused(capsys, 2, "--checkpoint", str(sst2_run), "--split", "test", "--tiny",
                  "--task", "cola")
    assert "--task cola" in err and "sst2" in err
    err = refused(capsys, 2, "--checkpoint", str(sst2_run), "--text", "a film", "   ")
    assert "empty" in err
    err = refused(capsys, 2, "--checkpoint", str(stsb_run), "--text", "A man sings.")
    assert "pair task" in err
    missing = tmp_path / "pairs.tsv"
    missing.write_text("sentence1\tscore\nA man sings.\t3.0\n")
    err = refused(capsys, 1, "--checkpoint", str(stsb_run), "--input", str(missing))
    assert f"{missing}:1: missing column(s) ['sentence2']" in err
    empty = tmp_path / "empty-text.tsv"
    empty.write_text("sentence\tlabel\na film\t1\n \t0\n")
    assert f"{empty}:3: empty sentence" in refused(capsys, 1, "--checkpoint", str(sst2_run),
                                                  "--input", str(empty))


def test_existing_outputs_are_not_overwritten(capsys, tmp_path, sst2_run):
    out = tmp_path / "kept.tsv"
    out.write_text("keep me\n")
    err = refused(capsys, 1, "--checkpoint", str(sst2_run), "--input",
                  str(FIXTURES_DIR / "SST-2/dev.tsv"), "--output", str(out))
    assert "exists" in err and out.read_text() == "keep me\n"
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "SST-2.tsv").write_text("keep me too\n")
    refused(capsys, 1, "--checkpoint", str(sst2_run), "--split", "test", "--tiny", "--output",
            str(folder))
    assert (folder / "SST-2.tsv").read_text() == "keep me too\n"
    code, _, _ = cli(capsys, "--checkpoint", str(sst2_run), "--split", "test", "--tiny",
                     "--output", str(folder), "--overwrite")
    assert code == 0 and (folder / "SST-2.tsv").read_text().startswith("index\tprediction\n")


def test_table_shows_the_task_columns_beside_the_predictions(sst2_run, stsb_run):
    table = Predictor.from_run(sst2_run).table(["a fine film", "a dull film"])
    assert list(table.columns) == ["sentence", "prediction", "probability"]
    assert list(table["sentence"]) == ["a fine film", "a dull film"]
    assert set(table["prediction"]) <= {"negative", "positive"}
    assert table["probability"].between(0.5, 1.0).all()  # the chosen label's probability
    pairs = Predictor.from_run(stsb_run).table([("A man sings.", "A man is singing.")])
    # a score, no probability
    assert list(pairs.columns) == ["sentence1", "sentence2", "prediction"]
    float(pairs["prediction"][0])
