"""The Colab run rehearsed against a local hub mirror (tools/hub_mirror.py, served by olah).

The `rehearsal` tests are deselected by default (pyproject addopts); run them with
`pytest -m rehearsal tests/test_hub_mirror.py`. They build the mirror (about 25 s: random
bert-base/roberta-base/distilbert weights), install olah from PyPI into $D2L_OLAH_VENV on the
first run, and talk to the mirror from fresh processes with empty HF caches. The last test runs
offline in the default suite.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import shutil
import socket
import sys
import urllib.request
import zipfile

import pytest

from d2l_utils.tasks import TASKS

rehearsal = pytest.mark.rehearsal
MINILM = "sentence-transformers/all-MiniLM-L6-v2"
MODELS = ("bert-base-uncased", "distilbert-base-uncased", "roberta-base")
GLUE_SPLITS = {config: ["train", "validation", "test"] for config in TASKS if config != "snli"}
GLUE_SPLITS["mnli"] = ["train", "validation_matched", "validation_mismatched", "test_matched",
                       "test_mismatched"]


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    from hub_mirror_fixture import served_mirror

    with served_mirror(tmp_path_factory.mktemp("hub_mirror")) as served:
        yield served
    shutil.rmtree(served.root, ignore_errors=True)  # 1.3 GB; pytest keeps its last tmp dirs


@pytest.fixture
def hf_home(tmp_path):
    """An empty HF_HOME for one test, removed afterwards (the models' downloads take 1.2 GB)."""
    yield tmp_path / "hf_home"
    shutil.rmtree(tmp_path / "hf_home", ignore_errors=True)


def _import_first(*names):
    for name in names:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise ImportError(f"none of {names}")


@rehearsal
def test_every_task_loads_through_the_mirror(mirror, hf_home):
    out = mirror.python("""
        import json
        import datasets
        from d2l_utils.data import load_task_data
        from d2l_utils.tasks import TASKS, get_task

        datasets.disable_progress_bars()
        tasks, raw = {}, {}
        for name in TASKS:
            data = load_task_data(get_task(name))
            label = data["train"].features["label"]
            tasks[name] = {"splits": {split: len(ds) for split, ds in data.items()},
                           "columns": data["train"].column_names,
                           "label": getattr(label, "names", None) or label.dtype,
                           "min_label": min(min(ds["label"]) for ds in data.values())}
            hub = datasets.load_dataset(*get_task(name).hub_args)
            raw[name] = {split: {"columns": ds.column_names, "rows": len(ds),
                                 "unlabelled": sum(y == -1 for y in ds["label"]),
                                 "idx": str(ds.features.get("idx", ""))}
                         for split, ds in hub.items()}
        print(json.dumps({"tasks": tasks, "raw": raw}))
        """, hf_home)
    rows = {**mirror.manifest["datasets"]["nyu-mll/glue"]["rows"],
            **mirror.manifest["datasets"]["stanfordnlp/snli"]["rows"]}
    for name, task in TASKS.items():
        got = out["tasks"][name]
        assert list(got["splits"]) == ["train", *task.eval_splits], name
        assert got["columns"] == [*task.text_keys, "label"], name
        assert got["label"] == (list(task.label_names) or "float32"), name
        if not task.is_regression:
            assert got["min_label"] >= 0, name  # the hub's -1 (no label) rows are dropped
        raw = out["raw"][name]
        if name == "snli":
            assert list(raw) == ["train", "validation", "test"]
            for split, info in raw.items():
                assert info["columns"] == ["premise", "hypothesis", "label"]
                assert info["unlabelled"] > 0, split  # as on the hub
                assert got["splits"][split] == info["rows"] - info["unlabelled"]
                assert info["rows"] == rows[f"plain_text/{split}"]
            continue
        assert list(raw) == GLUE_SPLITS[name], name
        for split, info in raw.items():
            assert info["columns"] == [*task.text_keys, "label", "idx"], (name, split)
            assert info["idx"] == "Value('int32')", (name, split)
            assert info["rows"] == rows[f"{name}/{split}"], (name, split)
            assert info["unlabelled"] == (info["rows"] if split.startswith("test") else 0)


@rehearsal
def test_models_load_through_the_mirror(mirror, hf_home):
    out = mirror.python("""
        import json
        import torch
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

        out = {}
        for name in %r:
            config = AutoConfig.from_pretrained(name)
            tokenizer = AutoTokenizer.from_pretrained(name)
            model, info = AutoModelForSequenceClassification.from_pretrained(
                name, num_labels=3, output_loading_info=True)
            batch = tokenizer(["A man plays a guitar."], ["Someone makes music."],
                              return_tensors="pt")
            with torch.no_grad():
                logits = model(**batch).logits
            out[name] = {
                "config": config.to_dict(), "tokenizer": type(tokenizer).__name__,
                "size": len(tokenizer), "logits": list(logits.shape),
                "specials": {t: tokenizer.convert_tokens_to_ids(t)
                             for t in tokenizer.all_special_tokens},
                "mask": tokenizer.mask_token_id,
                "new": sorted(info["missing_keys"]), "unused": sorted(info["unexpected_keys"])}
        print(json.dumps(out))
        """ % (MODELS,), hf_home)
    from d2l_utils.backbones import CONFIG_DIR

    for name in MODELS:
        got = out[name]
        shipped = json.loads((CONFIG_DIR / f"{name}.json").read_text())
        assert {k: got["config"].get(k, v) for k, v in shipped.items()} == shipped, name
        assert got["logits"] == [1, 3]
        # only the classification head is new: the weights are the hub's pretraining class
        assert got["new"] and all(k.startswith(("classifier.", "pre_classifier."))
                                  for k in got["new"]), (name, got["new"])
        if name == "roberta-base":
            assert got["tokenizer"] == "RobertaTokenizerFast"
            assert [got["specials"][t] for t in ("<s>", "<pad>", "</s>", "<unk>")] == [0, 1, 2, 3]
            assert got["mask"] == got["size"] - 1 and got["size"] <= 50265
            assert (mirror.root / "mirrors/models/roberta-base/STAND_IN.md").is_file()
        else:
            assert got["size"] == 30522
            assert [got["specials"][t] for t in ("[PAD]", "[CLS]", "[SEP]", "[MASK]")] == [
                0, 101, 102, 103]


@rehearsal
def test_tokenizer_and_model_download_after_config_only_cache(mirror, hf_home):
    """Regression: with only config.json in a fresh cache (load_config ran first), the cache-only
    attempt in `from_source` raised TypeError/ImportError (tokenizer) and AttributeError (model)
    instead of going on to download; `_roberta_tokenizer_source` crashed the same way."""
    out = mirror.python("""
        import json
        from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer
        from d2l_utils import backbones
        from d2l_utils.tasks import get_task

        backbone = backbones.resolve_backbone(%r)
        config = backbones.load_config(backbone, get_task("mrpc"))
        tokenizer = backbones.load_tokenizer(backbone, config)
        model = backbones.from_source(AutoModelForSequenceClassification,
                                      backbone.weights_source, config=config)
        AutoConfig.from_pretrained("roberta-base")  # roberta's config alone in the cache
        before = backbones._roberta_tokenizer_source()
        AutoTokenizer.from_pretrained("roberta-base")
        after = backbones._roberta_tokenizer_source()
        print(json.dumps({"tokenizer": type(tokenizer).__name__, "model": type(model).__name__,
                          "before": [before[0] == backbones.minilm_path(), bool(before[1])],
                          "after": list(after)}))
        """ % MINILM, hf_home)
    assert out == {"tokenizer": "BertTokenizerFast", "model": "BertForSequenceClassification",
                   "before": [True, True], "after": ["roberta-base", ""]}


@rehearsal
def test_training_cli_through_the_mirror(mirror, tmp_path, hf_home):
    output = tmp_path / "run"
    mirror.run([sys.executable, "-m", "d2l_utils", "train", "--task", "mrpc", "--method", "full",
                "--model", MINILM, "--max-steps", "2", "--max-train-samples", "16",
                "--max-eval-samples", "16", "--output-dir", str(output), "--no-progress"],
               hf_home)
    assert (output / "record.json").is_file()


@rehearsal
def test_bert_small_zip_is_served(mirror, tmp_path):
    sha1 = mirror.manifest["assets"]["files"]["bert.small.torch.zip"]
    url = mirror.asset_url + "bert.small.torch.zip"
    with urllib.request.urlopen(url, timeout=30) as response:
        data = response.read()
    assert hashlib.sha1(data).hexdigest() == sha1
    (tmp_path / "bert.small.torch.zip").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "bert.small.torch.zip") as zf:
        assert sorted(zf.namelist()) == ["bert.small.torch/pretrained.params",
                                         "bert.small.torch/vocab.json"]
    # the library's loader, with the mirror's URL and hash in place of d2l's
    assets = _import_first("d2l_utils.scratch.assets", "d2l_utils.assets")
    bert_module = _import_first("d2l_utils.scratch.bert", "d2l_utils.scratch_bert")
    registry = {"bert.small": assets.Asset(url, sha1, "mirror stand-in",
                                           bert_module.BERT_CONFIGS["bert.small"])}
    bert, vocab = assets.load_pretrained_bert("bert.small", cache_dir=tmp_path / "cache",
                                              registry=registry)
    assert vocab.idx_to_token[:5] == ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"]
    assert bert.encoder.pos_embedding.shape == (1, 512, 256) and len(bert.encoder.blks) == 2


@rehearsal
def test_serve_fails_fast_when_olah_cannot_start(mirror):
    from hub_mirror_fixture import olah_venv

    from tools.hub_mirror import MirrorError, serve_mirror

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(MirrorError, match="olah .* exited"):
            with serve_mirror(mirror.root, port=port, timeout=60, venv=olah_venv()):
                pass


def test_cache_with_only_a_config_fails_cleanly_offline(tmp_path, monkeypatch):
    """Offline regression for the crash above: a cache holding only config.json gives the
    config, and a ModelError (not TypeError/ImportError/AttributeError) for the rest."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    from d2l_utils.backbones import CONFIG_DIR, ModelError, from_source

    monkeypatch.setenv("D2L_OFFLINE", "1")
    commit = "0" * 40
    repo = tmp_path / "models--org--only-config"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    (repo / "snapshots" / commit).mkdir(parents=True)
    shutil.copyfile(CONFIG_DIR / "tiny-bert.json", repo / "snapshots" / commit / "config.json")
    cache = {"cache_dir": str(tmp_path)}
    assert from_source(AutoConfig, "org/only-config", **cache).hidden_size == 64
    for loader in (AutoTokenizer, AutoModelForSequenceClassification):
        with pytest.raises(ModelError, match="is set; not in the local cache"):
            from_source(loader, "org/only-config", **cache)
