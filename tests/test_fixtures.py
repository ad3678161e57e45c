"""Checks of the fixture files, read back with plain `csv` (quoting off) and `json`.

These tests deliberately use no project reader: they pin down the official file formats that
the readers are later tested against.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import pathlib
from collections import Counter

import pytest

from d2l_utils.fixtures import FIXTURE_TASKS, write_fixtures

NLI3 = {"entailment", "neutral", "contradiction"}
BIN2 = {"entailment", "not_entailment"}
MNLI_TRAIN_HEADER = [
    "index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
    "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label",
]
MNLI_DEV_HEADER = MNLI_TRAIN_HEADER[:-1] + ["label2", "label3", "label4", "label5", "gold_label"]
SNLI_KEYS = {
    "annotator_labels", "captionID", "gold_label", "pairID", "sentence1",
    "sentence1_binary_parse", "sentence1_parse", "sentence2", "sentence2_binary_parse",
    "sentence2_parse",
}

# task -> files: (relative path, header or None, label column (name or index), allowed labels,
# text columns). Headers are spelled out here on purpose, independently of the module.
TSV_FILES: dict[str, list[tuple[str, list[str] | None, str | int, set[str], list[str | int]]]] = {
    "cola": [(f"CoLA/{s}.tsv", None, 1, {"0", "1"}, [3]) for s in ("train", "dev")],
    "sst2": [(f"SST-2/{s}.tsv", ["sentence", "label"], "label", {"0", "1"}, ["sentence"])
             for s in ("train", "dev")],
    "mrpc": [(f"MRPC/{s}.tsv", ["Quality", "#1 ID", "#2 ID", "#1 String", "#2 String"],
              "Quality", {"0", "1"}, ["#1 String", "#2 String"]) for s in ("train", "dev")],
    "stsb": [(f"STS-B/{s}.tsv",
              ["index", "genre", "filename", "year", "old_index", "source1", "source2",
               "sentence1", "sentence2", "score"],
              "score", set(), ["sentence1", "sentence2"]) for s in ("train", "dev")],
    "qqp": [(f"QQP/{s}.tsv", ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"],
             "is_duplicate", {"0", "1"}, ["question1", "question2"]) for s in ("train", "dev")],
    "mnli": [
        ("MNLI/train.tsv", MNLI_TRAIN_HEADER, "gold_label", NLI3, ["sentence1", "sentence2"]),
        ("MNLI/dev_matched.tsv", MNLI_DEV_HEADER, "gold_label", NLI3,
         ["sentence1", "sentence2"]),
        ("MNLI/dev_mismatched.tsv", MNLI_DEV_HEADER, "gold_label", NLI3,
         ["sentence1", "sentence2"]),
    ],
    "qnli": [(f"QNLI/{s}.tsv", ["index", "question", "sentence", "label"], "label", BIN2,
              ["question", "sentence"]) for s in ("train", "dev")],
    "rte": [(f"RTE/{s}.tsv", ["index", "sentence1", "sentence2", "label"], "label", BIN2,
             ["sentence1", "sentence2"]) for s in ("train", "dev")],
    "wnli": [(f"WNLI/{s}.tsv", ["index", "sentence1", "sentence2", "label"], "label",
              {"0", "1"}, ["sentence1", "sentence2"]) for s in ("train", "dev")],
}
SNLI_FILES = [f"SNLI/snli_1.0_{s}.jsonl" for s in ("train", "dev", "test")]
# The unlabelled GLUE test files: (relative path, header, text columns), headers as in the
# official download (an index column, the texts; no label, STS-B no score).
MNLI_TEST_HEADER = MNLI_TRAIN_HEADER[:-2]
TEST_FILES: list[tuple[str, list[str], list[str]]] = [
    ("CoLA/test.tsv", ["index", "sentence"], ["sentence"]),
    ("SST-2/test.tsv", ["index", "sentence"], ["sentence"]),
    ("MRPC/test.tsv", ["index", "#1 ID", "#2 ID", "#1 String", "#2 String"],
     ["#1 String", "#2 String"]),
    ("STS-B/test.tsv", ["index", "genre", "filename", "year", "old_index", "source1", "source2",
                        "sentence1", "sentence2"], ["sentence1", "sentence2"]),
    ("QQP/test.tsv", ["id", "question1", "question2"], ["question1", "question2"]),
    ("MNLI/test_matched.tsv", MNLI_TEST_HEADER, ["sentence1", "sentence2"]),
    ("MNLI/test_mismatched.tsv", MNLI_TEST_HEADER, ["sentence1", "sentence2"]),
    ("diagnostic/diagnostic.tsv", ["index", "sentence1", "sentence2"], ["sentence1", "sentence2"]),
    ("QNLI/test.tsv", ["index", "question", "sentence"], ["question", "sentence"]),
    ("RTE/test.tsv", ["index", "sentence1", "sentence2"], ["sentence1", "sentence2"]),
    ("WNLI/test.tsv", ["index", "sentence1", "sentence2"], ["sentence1", "sentence2"]),
]
TSV_CASES = [(task, *spec) for task, specs in TSV_FILES.items() for spec in specs]


def read_tsv(path: pathlib.Path) -> list[list[str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))


def read_table(path: pathlib.Path, header: list[str] | None) -> list[dict[str | int, str]]:
    """Rows as dicts keyed by header name, or by column index for header-less files."""
    rows = read_tsv(path)
    if header is None:
        return [dict(enumerate(r)) for r in rows]
    return [dict(zip(rows[0], r)) for r in rows[1:]]


def read_jsonl(path: pathlib.Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def is_dev(relpath: str) -> bool:
    return "train" not in relpath


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    out = tmp_path_factory.mktemp("glue")
    assert write_fixtures(out) == out
    return out


def test_task_list_covers_glue_and_snli() -> None:
    assert set(FIXTURE_TASKS) == set(TSV_FILES) | {"snli"}
    assert len(FIXTURE_TASKS) == 10


def test_all_expected_files_exist(root: pathlib.Path) -> None:
    expected = {c[1] for c in TSV_CASES} | set(SNLI_FILES) | {c[0] for c in TEST_FILES}
    written = {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}
    assert written == expected


@pytest.mark.parametrize("task,relpath,header,label_col,allowed,text_cols", TSV_CASES,
                         ids=[c[1] for c in TSV_CASES])
def test_tsv_file(root: pathlib.Path, task: str, relpath: str, header: list[str] | None,
                  label_col: str | int, allowed: set[str], text_cols: list[str | int]) -> None:
    path = root / relpath
    raw = path.read_bytes()
    assert not raw.startswith(b"\xef\xbb\xbf"), "no BOM"
    assert b"\r" not in raw and raw.endswith(b"\n")
    raw.decode("utf-8")

    rows = read_tsv(path)
    width = 4 if header is None else len(header)
    if header is not None:
        assert rows[0] == header
    body = rows if header is None else rows[1:]
    assert all(len(r) == width for r in body), "every row has the header's number of fields"
    n_min = 24 if not is_dev(relpath) else 12
    assert n_min <= len(body) <= (56 if task == "sst2" else 40)

    table = read_table(path, header)
    for row in table:
        for col in text_cols:
            assert row[col].strip(), f"empty text in {relpath}"
    labels = [row[label_col] for row in table]
    if task == "stsb":
        scores = [float(x) for x in labels]
        assert all(0.0 <= s <= 5.0 and not math.isnan(s) for s in scores)
        assert all(len(x.split(".")[-1]) == 3 for x in labels), "written like 3.800"
        assert min(scores) < 1.0 and max(scores) > 4.0, "scores span the range"
        return
    counts = Counter(labels)
    assert set(counts) == allowed, "labels in the allowed set, every class present"
    assert max(counts.values()) - min(counts.values()) <= 1, f"balanced: {counts}"


@pytest.mark.parametrize("relpath,header,text_cols", TEST_FILES, ids=[c[0] for c in TEST_FILES])
def test_unlabelled_test_file(root: pathlib.Path, relpath: str, header: list[str],
                              text_cols: list[str]) -> None:
    raw = (root / relpath).read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n") and not raw.startswith(b"\xef\xbb\xbf")
    rows = read_tsv(root / relpath)
    assert rows[0] == header and all(len(r) == len(header) for r in rows)
    table = read_table(root / relpath, header)
    assert len(table) == 6
    assert [row[header[0]] for row in table] == [str(i) for i in range(6)]
    assert all(row[col].strip() for row in table for col in text_cols)


def test_cola_columns(root: pathlib.Path) -> None:
    for split in ("train", "dev"):
        for source, label, original, sentence in read_tsv(root / f"CoLA/{split}.tsv"):
            assert source and " " not in source
            assert original == ("*" if label == "0" else "")
            assert sentence[0].isupper()


def test_sst2_learnable_shape(root: pathlib.Path) -> None:
    train = read_table(root / "SST-2/train.tsv", ["sentence", "label"])
    dev = read_table(root / "SST-2/dev.tsv", ["sentence", "label"])
    assert len(train) >= 48 and len(dev) >= 24
    for rows in (train, dev):
        counts = Counter(r["label"] for r in rows)
        assert counts["0"] == counts["1"]
        assert all(r["sentence"].strip() == r["sentence"].strip().lower() for r in rows)
    train_text = {r["sentence"].strip() for r in train}
    dev_text = {r["sentence"].strip() for r in dev}
    assert len(train_text) == len(train) and len(dev_text) == len(dev), "no duplicates"
    assert not train_text & dev_text, "train and dev sentences are disjoint"


def test_mnli_quotes_and_annotators(root: pathlib.Path) -> None:
    texts = []
    for name, header in [("train", MNLI_TRAIN_HEADER), ("dev_matched", MNLI_DEV_HEADER),
                         ("dev_mismatched", MNLI_DEV_HEADER)]:
        table = read_table(root / f"MNLI/{name}.tsv", header)
        texts += [r["sentence1"] + r["sentence2"] for r in table]
        for r in table:
            assert r["sentence1_binary_parse"].startswith("( ")
            assert r["sentence1_parse"].startswith("(ROOT")
            votes = Counter(r[c] for c in header if c.startswith("label") and r[c])
            assert votes.most_common(1)[0][0] == r["gold_label"]
            assert r["pairID"].startswith(r["promptID"])
    assert any('"' in t for t in texts)
    # the quotes are placed so that a reader that leaves quoting on gets the file wrong
    with open(root / "MNLI/train.tsv", encoding="utf-8", newline="") as f:
        naive = list(csv.reader(f, delimiter="\t"))
    assert len(naive) != len(read_tsv(root / "MNLI/train.tsv"))


def test_mnli_genres(root: pathlib.Path) -> None:
    def genres(name: str) -> set[str]:
        return {r["genre"] for r in read_table(root / f"MNLI/{name}.tsv", MNLI_TRAIN_HEADER)}

    assert genres("dev_matched") <= genres("train")
    assert not genres("dev_mismatched") & genres("train")


@pytest.mark.parametrize("relpath", SNLI_FILES)
def test_snli_jsonl(root: pathlib.Path, relpath: str) -> None:
    raw = (root / relpath).read_bytes()
    assert b"\r" not in raw and raw.endswith(b"\n")
    records = read_jsonl(root / relpath)
    assert all(set(r) == SNLI_KEYS for r in records)
    assert all(isinstance(r["annotator_labels"], list) and r["annotator_labels"]
               for r in records)
    for r in records:
        for key in ("sentence1", "sentence2"):
            assert r[key].strip() and "\t" not in r[key] and "\n" not in r[key]
    gold = Counter(r["gold_label"] for r in records)
    assert set(gold) == NLI3 | {"-"}
    assert 1 <= gold["-"] <= 2, "one or two examples without gold label, to be dropped"
    kept = [gold[label] for label in NLI3]
    assert max(kept) - min(kept) <= 1
    n_min = 24 if not is_dev(relpath) else 12
    assert n_min <= sum(kept) <= 40


def test_no_tabs_or_newlines_in_any_field(root: pathlib.Path) -> None:
    for relpath, header in [(c[1], c[2]) for c in TSV_CASES]:
        rows = read_tsv(root / relpath)
        width = 4 if header is None else len(header)
        assert all(len(r) == width for r in rows)
        assert all("\n" not in v and "\r" not in v for r in rows for v in r)


def test_only_requested_tasks_are_written(tmp_path: pathlib.Path) -> None:
    write_fixtures(tmp_path, ["sst2"])
    written = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                     if p.is_file())
    assert written == ["SST-2/dev.tsv", "SST-2/test.tsv", "SST-2/train.tsv"]


def test_task_names_and_errors(tmp_path: pathlib.Path) -> None:
    write_fixtures(tmp_path / "a", ["STS-B", "rte"])
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["RTE", "STS-B"]
    write_fixtures(tmp_path / "b", "cola")  # a single name is not split into letters
    assert [p.name for p in (tmp_path / "b").iterdir()] == ["CoLA"]
    write_fixtures(tmp_path / "d", ["mnli"])  # MNLI's test splits include the AX diagnostic
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["MNLI", "diagnostic"]
    with pytest.raises(ValueError, match="unknown fixture task"):
        write_fixtures(tmp_path / "c", ["imdb"])


def test_output_is_deterministic(tmp_path: pathlib.Path) -> None:
    first, second = write_fixtures(tmp_path / "1"), write_fixtures(tmp_path / "2")
    for path in sorted(first.rglob("*.*")):
        assert path.read_bytes() == (second / path.relative_to(first)).read_bytes()


def test_fixture_files_are_byte_identical_to_the_generated_ones(tmp_path):
    """The fixtures became files; their SHA-256s were taken from the generator they replaced."""
    expected = json.loads((pathlib.Path(__file__).with_name("fixture_sha256.json")).read_text())
    write_fixtures(tmp_path)
    written = {str(p.relative_to(tmp_path)): hashlib.sha256(p.read_bytes()).hexdigest()
               for p in sorted(tmp_path.rglob("*")) if p.is_file()}
    assert written == expected
