"""Load a task's data from the hub, a local GLUE-layout folder or the built-in fixtures.

All three sources return the same `datasets.DatasetDict`: split `train` plus the task's
evaluation splits, each with the task's text columns and a `label` column (`ClassLabel` with the
hub's label order, or `float32` for STS-B).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .fixtures import FIXTURES_DIR
from .hub import offline_reason
from .tasks import FileLayout, TaskSpec, TestSplit


class DataError(ValueError):
    """A data source that cannot be used, with a message that says how to fix it."""


class DataFormatError(DataError):
    """A malformed data file; the message names the file and line."""

    def __init__(self, path: Path | str, line: int | None, problem: str):
        where = f"{path}:{line}" if line is not None else str(path)
        super().__init__(f"{where}: {problem}")
        self.path, self.line = Path(path), line


def task_features(task: TaskSpec) -> Features:
    """The schema every source produces for `task`."""
    label = Value("float32") if task.is_regression else ClassLabel(names=list(task.label_names))
    return Features({**_strings(task.text_keys), "label": label})


def _strings(keys: tuple[str, ...] | list[str]) -> Features:
    return Features({key: Value("string") for key in keys})


# ---------------------------------------------------------------------------------------------
# Local files


def _read_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text) pairs of a UTF-8 file; an undecodable line is a clear error."""
    raw = path.read_bytes()
    if not raw.strip():
        raise DataFormatError(path, None, "the file is empty")
    lines = []
    # lines end at "\n" only (a "\r\n" ending loses its "\r"): a stray "\r" stays in its field
    for number, chunk in enumerate(raw.removesuffix(b"\n").split(b"\n"), start=1):
        chunk = chunk.removesuffix(b"\r")
        try:
            text = chunk.decode("utf-8")
        except UnicodeDecodeError as err:
            raise DataFormatError(path, number, f"not valid UTF-8 ({err.reason} at byte "
                                  f"{err.start}); re-save the file as UTF-8") from None
        if number == 1:
            text = text.lstrip("\ufeff")
        if text.strip():
            lines.append((number, text))
    return lines


def _read_tsv(path: Path, layout: FileLayout) -> list[tuple[int, dict[str, str]]]:
    """Rows of a tab-separated file as dicts keyed by column name (quoting off, as GLUE needs);
    every row has exactly the header's fields."""
    lines = _read_lines(path)
    if layout.positional_header is None:
        (_, header_line), lines = lines[0], lines[1:]
        header = header_line.split("\t")
    else:
        header = list(layout.positional_header)
    if missing := [col for col in layout.columns.values() if col not in header]:
        raise DataFormatError(path, 1, f"missing column(s) {missing}; the header has {header}")
    wanted = {ours: header.index(theirs) for ours, theirs in layout.columns.items()}
    source = "the header" if layout.positional_header is None else "the file layout"
    rows = []
    for number, text in lines:
        fields = text.split("\t")  # no quoting, as GLUE needs: a quote is just a character
        if len(fields) != len(header):  # more would shift the columns, fewer lose one
            raise DataFormatError(path, number, f"found {len(fields)} tab-separated fields, "
                                  f"expected {len(header)} (as {source}); is there a tab inside "
                                  "a sentence, or a missing one?")
        rows.append((number, {ours: fields[i] for ours, i in wanted.items()}))
    return rows


def _read_jsonl(path: Path, layout: FileLayout) -> list[tuple[int, dict[str, str]]]:
    rows = []
    for number, text in _read_lines(path):
        try:
            record = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataFormatError(path, number, f"invalid JSON ({err.msg})") from None
        if not isinstance(record, dict):
            raise DataFormatError(path, number, f"expected a JSON object, found "
                                  f"{type(record).__name__} {text.strip()[:40]!r}")
        if missing := [col for col in layout.columns.values() if col not in record]:
            raise DataFormatError(path, number, f"missing key(s) {missing}")
        for col in layout.columns.values():
            if not isinstance(record[col], str):
                raise DataFormatError(path, number, f"{col!r} is {json.dumps(record[col])}, "
                                      "expected a string")
        rows.append((number, {ours: record[theirs] for ours, theirs in layout.columns.items()}))
    return rows


def _parse_label(task: TaskSpec, value: str, path: Path, line: int) -> int | float:
    value = value.strip()
    if task.is_regression:
        try:
            score = float(value)
        except ValueError:
            raise DataFormatError(path, line, f"score {value!r} is not a number") from None
        if not math.isfinite(score):  # float() reads "nan" and "inf": never train on them
            raise DataFormatError(path, line, f"score {value!r} is not a finite number")
        low, high = task.label_range or (-math.inf, math.inf)
        if not low <= score <= high:
            raise DataFormatError(path, line, f"score {value!r} is outside {task.name}'s "
                                  f"range {low:g} to {high:g}")
        return score
    # the label names, then the task's integers spelled plainly
    choices = [*task.label_names, *map(str, range(task.num_labels))]
    if value in choices:
        return choices.index(value) % task.num_labels
    raise DataFormatError(path, line, f"label {value!r} is not one of {choices}")


def read_split_file(task: TaskSpec, path: Path, layout: FileLayout | None = None,
                    texts_required: bool = False) -> Dataset:
    """Read one split file of `task` (any supported format) into the common schema; without a
    `label` in `layout`'s columns, the texts (and `idx`, when mapped) only. `texts_required`
    refuses an empty text."""
    layout = layout or task.files
    reader = _read_jsonl if path.suffix == ".jsonl" else _read_tsv
    keys = [key for key in (*task.text_keys, "idx") if key in layout.columns]
    labelled = "label" in layout.columns
    columns: dict[str, list] = {key: [] for key in (*keys, *["label"] * labelled)}
    for line, row in reader(path, layout):
        if labelled and row["label"].strip() in layout.drop_labels:
            continue
        for key in keys:
            if texts_required and key != "idx" and not row[key].strip():
                raise DataFormatError(path, line, f"empty {key}: nothing to predict")
            columns[key].append(row[key])
        if labelled:
            columns["label"].append(_parse_label(task, row["label"], path, line))
    if not columns[keys[0]]:
        raise DataFormatError(path, None, "no examples found (only a header or dropped rows)")
    return Dataset.from_dict(columns, features=task_features(task) if labelled else _strings(keys))


def read_input_file(task: TaskSpec, path: str | os.PathLike) -> Dataset:
    """A file to predict for `task`, labelled or not: its train/dev layout (CoLA's without a
    header), one of its test layouts, or a header naming the task's columns (`label` optional)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"--input {path}: no such file")
    if path.suffix == ".jsonl":
        return read_split_file(task, path, texts_required=True)
    first = _read_lines(path)[0][1].split("\t")
    plain = {key: key for key in task.text_keys}
    layouts = [task.files, *(FileLayout({}, s.columns) for s in task.test_splits),
               FileLayout({}, {**plain, "label": "label"}), FileLayout({}, plain)]
    for layout in layouts:
        if (set(layout.columns.values()) <= set(first) if layout.positional_header is None
                else len(first) == len(layout.positional_header)):
            return read_split_file(task, path, layout, texts_required=True)
    missing = [key for key in task.text_keys if key not in first]
    raise DataFormatError(path, 1, f"missing column(s) {missing or list(task.text_keys)}; the "
                          f"header has {first}; {task.name} needs a header with "
                          f"{', '.join(task.text_keys)} (and label, optional) or its GLUE layout")


def glue_split_files(task: TaskSpec, data_dir: str | os.PathLike) -> dict[str, Path]:
    """{split: file} of `task` in a folder in the official GLUE layout; every one must exist."""
    root = Path(data_dir)
    if not root.is_dir():
        raise DataError(f"--data-dir {root}: no such directory")
    folder = root / task.glue_dir
    if not folder.is_dir():
        raise DataError(f"--data-dir {root}: expected a folder {task.glue_dir}/ for task "
                        f"{task.name!r} (official GLUE layout, e.g. {task.glue_dir}/train.tsv)")
    # all present before any read
    return {split: split_file(folder, names, split) for split, names in task.files.splits.items()}


def split_file(folder: Path, names: tuple[str, ...], split: str) -> Path:
    """The first of `names` in `folder` that is a file; none is a `DataError` saying why."""
    found = [folder / name for name in names if (folder / name).is_file()]
    if not found:
        odd = [folder / name for name in names if os.path.lexists(folder / name)]
        if odd:  # there, but not a readable file
            what = ("is a directory" if odd[0].is_dir() else
                    "is a symlink that leads nowhere (broken, or a loop)"
                    if odd[0].is_symlink() else "is not a regular file")
            raise DataError(f"{odd[0]} {what}; the {split} split must be a file")
        raise DataError(f"{folder}: missing {' or '.join(names)} (the {split} split)")
    return found[0]


def load_test_split(task: TaskSpec, split: TestSplit, data_dir: str | os.PathLike | None = None,
                    tiny: bool = False) -> Dataset:
    """One unlabelled test split of `task` (its text columns and `idx`) from the fixtures
    (`tiny`), a GLUE-layout folder or the hub."""
    if not tiny and data_dir is None:
        ds = _hub_dataset((task.hub_path, split.hub_config) if split.hub_config
                          else task.hub_args)[split.name]
        return ds.select_columns([*task.text_keys, "idx"]).cast(_strings([*task.text_keys, "idx"]))
    root = Path(FIXTURES_DIR if tiny else data_dir)
    if not root.is_dir():
        raise DataError(f"--data-dir {root}: no such directory")
    path = root / split.path
    return read_split_file(task, split_file(path.parent, (path.name,), split.name),
                           FileLayout({}, split.columns), texts_required=True)


def load_glue_dir(task: TaskSpec, data_dir: str | os.PathLike) -> DatasetDict:
    """Read `task` from a folder in the official GLUE layout (`DATA_DIR/SST-2/train.tsv`, ...)."""
    return DatasetDict({split: read_split_file(task, path)
                        for split, path in glue_split_files(task, data_dir).items()})


def data_fingerprint(task: TaskSpec, data: DatasetDict, data_dir: str | os.PathLike | None = None,
                     tiny: bool = False) -> dict[str, dict[str, Any]]:
    """{split: what identifies its data}: the file, its size and SHA-256 for local files (and
    the fixtures); the `datasets` fingerprint for the hub. A checkpoint stores it, and a resume
    compares it."""
    if not tiny and data_dir is None:
        return {split: {"hub": "/".join(task.hub_args), "fingerprint": ds._fingerprint}
                for split, ds in data.items()}
    out = {}
    for split, path in glue_split_files(task, FIXTURES_DIR if tiny else data_dir).items():
        with open(path, "rb") as handle:
            digest = hashlib.file_digest(handle, "sha256").hexdigest()
        out[split] = {"file": str(path.resolve()), "bytes": path.stat().st_size, "sha256": digest}
    return out


# ---------------------------------------------------------------------------------------------
# Hub

def _hub_dataset(hub_args: tuple[str, ...]) -> DatasetDict:
    """`datasets.load_dataset(*hub_args)`, failing within seconds when the hub is unreachable."""
    import datasets

    reason = offline_reason()
    saved = datasets.config.HF_HUB_OFFLINE
    try:
        # Unreachable hub: only the local cache is tried, so the error comes in seconds.
        datasets.config.HF_HUB_OFFLINE = saved or reason is not None
        return datasets.load_dataset(*hub_args)
    except Exception as err:  # datasets raises many types when offline; all mean the same here
        reason = reason or f"{type(err).__name__}: {err}"
        raise DataError(f"cannot load {'/'.join(hub_args)} from the hub: {reason}. Use local "
                        "files with --data-dir DIR (official GLUE layout, see the README) or the "
                        "built-in fixtures with --tiny.") from None
    finally:
        datasets.config.HF_HUB_OFFLINE = saved


def load_hub(task: TaskSpec) -> DatasetDict:
    """Download `task` from the Hugging Face hub (or its local cache) into the common schema."""
    raw = _hub_dataset(task.hub_args)
    features = task_features(task)
    splits = {}
    for split in ("train", *task.eval_splits):
        ds = raw[split].select_columns(list(features))
        if not task.is_regression:
            ds = ds.filter(lambda batch: [y >= 0 for y in batch["label"]], batched=True)
        splits[split] = ds.cast(features)
    return DatasetDict(splits)


# ---------------------------------------------------------------------------------------------
# The one entry point


def subsample(ds: Dataset, max_samples: int | None, seed: int) -> Dataset:
    """A seeded random subset of at most `max_samples` examples (all when None)."""
    if max_samples is None or max_samples >= len(ds):
        return ds
    return ds.shuffle(seed=seed).select(range(max_samples))


def check_eval_sizes(task: TaskSpec, data: DatasetDict,
                     max_eval_samples: int | None = None) -> None:
    """Refuse evaluation splits too small for the task's metrics (empty, or one STS-B pair:
    a correlation needs two), before any training."""
    from .metrics import MIN_EXAMPLES

    # the metric that needs the most examples decides
    metric = max(task.metrics, key=lambda name: MIN_EXAMPLES.get(name, 1))
    needed = MIN_EXAMPLES.get(metric, 1)
    for split in task.eval_splits:
        found = len(data[split]) if split in data else 0
        if found < needed:
            after = (f" after --max-eval-samples {max_eval_samples}"
                     if max_eval_samples is not None and max_eval_samples < needed else "")
            raise DataError(f"{task.name}: the {split} split has {found} example(s){after}; "
                            f"{task.name}'s {metric} needs at least {needed}")


def load_task_data(task: TaskSpec, data_dir: str | os.PathLike | None = None,
                   tiny: bool = False, max_train_samples: int | None = None,
                   max_eval_samples: int | None = None, seed: int = 42) -> DatasetDict:
    """Train and evaluation splits of `task` from the fixtures (`tiny`), `data_dir` or the hub;
    evaluation splits too small for the task's metrics are refused."""
    # the fixtures are files in the GLUE layout, read by the same code as real files
    data = load_hub(task) if not tiny and data_dir is None else load_glue_dir(
        task, FIXTURES_DIR if tiny else data_dir)
    data = DatasetDict({
        split: subsample(ds, max_train_samples if split == "train" else max_eval_samples, seed)
        for split, ds in data.items()
    })
    check_eval_sizes(task, data, max_eval_samples)
    return data
