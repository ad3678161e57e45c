"""`export`: the folder other tools load gives the labels and probabilities `predict` gives
(within 1e-5): transformers' `pipeline` for merged models, peft's `AutoPeftModel...` for adapter
folders, the adapters library's `load_adapter` for its backend."""

from __future__ import annotations

from pathlib import Path

import pytest
from transformers import AutoTokenizer, pipeline

from d2l_utils import Predictor
from d2l_utils.arguments import RunArguments
from d2l_utils.cli import main
from d2l_utils.data import read_input_file
from d2l_utils.fixtures import FIXTURES_DIR
from d2l_utils.inference.export import export_run
from d2l_utils.tasks import get_task
from d2l_utils.training import train

TEXTS = read_input_file(get_task("sst2"), FIXTURES_DIR / "SST-2/dev.tsv")["sentence"][:8]
MNLI_DEV = read_input_file(get_task("mnli"), FIXTURES_DIR / "MNLI/dev_matched.tsv")
PAIRS = list(zip(MNLI_DEV["premise"][:6], MNLI_DEV["hypothesis"][:6]))
# (method, options, merge, the kind of folder expected)
CASES = {
    "full": ("full", {}, True, "transformers"),
    "lora-merged": ("lora", {}, True, "transformers"),
    "bitfit": ("bitfit", {}, True, "transformers"),
    "freeze": ("freeze", {}, True, "transformers"),
    "prefix-peft": ("prefix", {"backend": "peft"}, True, "peft"),
    "prompt-tuning": ("prompt-tuning", {}, True, "peft"),
    "ptuning-v2": ("ptuning-v2", {}, True, "peft"),
    "lora-unmerged": ("lora", {}, False, "peft"),
    "lora-adapters": ("lora", {"backend": "adapters"}, True, "adapters"),
    "prefix-adapters": ("prefix", {}, True, "adapters"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[tuple[str, str], Path]:
    """One short tiny run per method and backend (sst2), trained once for the module."""
    root = tmp_path_factory.mktemp("runs")
    done: dict[tuple[str, str], Path] = {}

    def get(method: str, options: dict, task: str = "sst2") -> Path:
        key = (task, method + str(sorted(options.items())))
        if key not in done:
            folder = root / f"{task}-{len(done)}"
            train(RunArguments(task=task, method=method, tiny=True, max_steps=3,
                               output_dir=str(folder), progress=False, **options),
                  verbose=False)
            done[key] = folder
        return done[key]

    return get


def loaded_pipeline(kind: str, folder: Path, base: str | None):
    """The exported folder loaded the way its kind is meant to be loaded."""
    if kind == "transformers":
        return pipeline("text-classification", model=str(folder))
    tokenizer = AutoTokenizer.from_pretrained(folder)
    if kind == "peft":  # peft's pipeline loader refuses prompt-learning adapters
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(folder)
    else:
        from adapters import AutoAdapterModel

        model = AutoAdapterModel.from_pretrained(base)
        model.load_adapter(str(folder), set_active=True)
    return pipeline("text-classification", model=model, tokenizer=tokenizer)


def assert_same(pipe_outputs: list[dict], predictions) -> None:
    assert [o["label"] for o in pipe_outputs] == [p.label for p in predictions]
    for out, prediction in zip(pipe_outputs, predictions):
        assert out["score"] == pytest.approx(prediction.probability, abs=1e-5)


@pytest.mark.parametrize("case", list(CASES))
def test_exported_folder_predicts_as_predict_does(runs, tmp_path, case):
    method, options, merge, kind = CASES[case]
    run = runs(method, options)
    exported = export_run(run, tmp_path / "export", merge=merge)
    assert exported.kind == kind
    if kind == "transformers":
        config = (tmp_path / "export" / "config.json").read_text()
        assert '"id2label"' in config and '"positive"' in config
        assert (tmp_path / "export" / "model.safetensors").is_file()
    predictions = Predictor.from_run(run).predict(TEXTS)
    assert len({round(p.probability, 6) for p in predictions}) > 1
    assert_same(loaded_pipeline(kind, tmp_path / "export", exported.base)(TEXTS), predictions)


def test_pair_task_through_the_pipeline(runs, tmp_path):
    run = runs("full", {}, task="mnli")
    export_run(run, tmp_path / "mnli")
    pipe = pipeline("text-classification", model=str(tmp_path / "mnli"))
    outputs = pipe([{"text": a, "text_pair": b} for a, b in PAIRS])
    assert_same(outputs, Predictor.from_run(run).predict(PAIRS))


def test_existing_target_is_refused_and_kept(runs, tmp_path, capsys):
    run = runs("full", {})
    capsys.readouterr()  # what training printed
    target = tmp_path / "taken"
    target.mkdir()
    (target / "mine.txt").write_text("keep")
    assert main(["export", "--checkpoint", str(run), "--to", str(target)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "exists" in err
    assert [p.name for p in target.iterdir()] == ["mine.txt"]
    assert main(["export", "--checkpoint", str(tmp_path / "nothing"), "--to",
                 str(tmp_path / "new")]) == 1
    assert "not a run directory" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
