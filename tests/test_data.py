import json
import time

import pytest
from datasets import ClassLabel, Value

from d2l_utils.data import (
    DataError,
    DataFormatError,
    load_glue_dir,
    load_task_data,
    read_split_file,
    task_features,
)
from d2l_utils.fixtures import FIXTURE_TASKS, write_fixtures
from d2l_utils.tasks import TASKS, get_task


@pytest.mark.parametrize("name", list(TASKS))
def test_every_task_reads_from_the_glue_layout_into_the_common_schema(glue_dir, name):
    task = get_task(name)
    data = load_glue_dir(task, glue_dir)
    assert set(data) == {"train", *task.eval_splits}
    for split, ds in data.items():
        assert ds.features == task_features(task), split
        assert len(ds) >= 10
        if not task.is_regression:
            assert set(ds["label"]) == set(range(task.num_labels)), f"{split}: a class is missing"
        for key in task.text_keys:
            assert all(text.strip() for text in ds[key])


def test_fixtures_cover_every_task():
    assert set(FIXTURE_TASKS) == set(TASKS)


def test_mnli_keeps_quotes_and_maps_gold_labels_in_hub_order(glue_dir):
    data = load_glue_dir(get_task("mnli"), glue_dir)
    rows = (glue_dir / "MNLI" / "train.tsv").read_text().splitlines()[1:]
    assert len(data["train"]) == len(rows)  # quoting off: no two rows merged into one
    texts = list(data["train"]["premise"]) + list(data["train"]["hypothesis"])
    assert any('"' in text for text in texts)
    header = (glue_dir / "MNLI" / "train.tsv").read_text().splitlines()[0].split("\t")
    gold = [r.split("\t")[header.index("gold_label")] for r in rows]
    names = data["train"].features["label"].names
    assert [names[i] for i in data["train"]["label"]] == gold
    assert len(set(gold)) == 3


def test_snli_drops_unlabelled_pairs(glue_dir):
    lines = (glue_dir / "SNLI" / "snli_1.0_dev.jsonl").read_text().splitlines()
    unlabelled = sum(json.loads(line)["gold_label"] == "-" for line in lines)
    assert unlabelled > 0
    data = load_glue_dir(get_task("snli"), glue_dir)
    assert len(data["validation"]) == len(lines) - unlabelled


def test_snli_txt_format(tmp_path):
    header = ("gold_label\tsentence1_binary_parse\tsentence2_binary_parse\tsentence1_parse\t"
              "sentence2_parse\tsentence1\tsentence2\tcaptionID\tpairID\tlabel1")
    rows = ["neutral\t(a)\t(b)\t(A)\t(B)\tA dog runs.\tA dog is fast.\tc1\tp1\tneutral",
            "-\t(a)\t(b)\t(A)\t(B)\tA cat.\tAn animal.\tc2\tp2\tneutral",
            "contradiction\t(a)\t(b)\t(A)\t(B)\tA man sits.\tA man runs.\tc3\tp3\tcontradiction"]
    path = tmp_path / "snli_1.0_dev.txt"
    path.write_text("\n".join([header, *rows]) + "\n")
    ds = read_split_file(get_task("snli"), path)
    assert ds["premise"] == ["A dog runs.", "A man sits."]
    assert ds["label"] == [1, 2]


def test_stsb_labels_are_float_scores(glue_dir):
    ds = load_glue_dir(get_task("stsb"), glue_dir)["validation"]
    assert ds.features["label"] == Value("float32")
    assert all(0.0 <= y <= 5.0 for y in ds["label"])
    assert isinstance(load_glue_dir(get_task("cola"), glue_dir)["train"].features["label"],
                      ClassLabel)


def test_extra_columns_and_reordered_columns_are_read_by_name(tmp_path):
    (tmp_path / "RTE").mkdir()
    for name in ("train.tsv", "dev.tsv"):
        (tmp_path / "RTE" / name).write_text(
            "label\textra\tsentence2\tindex\tsentence1\n"
            "entailment\tx\tA man sleeps.\t0\tA man is sleeping.\n"
            "not_entailment\ty\tA man runs.\t1\tA man is sleeping.\n")
    ds = load_glue_dir(get_task("rte"), tmp_path)["train"]
    assert ds["sentence1"] == ["A man is sleeping."] * 2
    assert ds["label"] == [0, 1]


def _sst2_dir(tmp_path, train_text):
    (tmp_path / "SST-2").mkdir(exist_ok=True)
    (tmp_path / "SST-2" / "dev.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t0\n")
    path = tmp_path / "SST-2" / "train.tsv"
    if isinstance(train_text, bytes):
        path.write_bytes(train_text)
    else:
        path.write_text(train_text)
    return path


@pytest.mark.parametrize("content,message", [
    ("sentence\tlabel\ngood film\t1\nbad film\t7\n", r"train.tsv:3: label '7' is not one of"),
    ("text\tlabel\ngood film\t1\n", r"train.tsv:1: missing column\(s\) \['sentence'\]"),
    ("", r"train.tsv: the file is empty"),
    ("sentence\tlabel\n", r"train.tsv: no examples found"),
    ("sentence\tlabel\ngood film\t1\nno label here\n",
     r"train.tsv:3: found 1 tab-separated fields, expected 2 \(as the header\)"),
    # a tab inside a sentence: the row has more fields than the header, never shifted columns
    ("sentence\tlabel\ngood film\t1\n\"Profit rose\t12 percent,\" he said.\t1\n",
     r"train.tsv:3: found 3 tab-separated fields, expected 2 \(as the header\)"),
    ("sentence\tlabel\ngood film\t1\nbad film\t\u00b2\n",
     r"train.tsv:3: label '\u00b2' is not one"),
    ("sentence\tlabel\ngood film\t1\nbad film\t01\n", r"train.tsv:3: label '01' is not one"),
    (b"sentence\tlabel\ngood\t1\ncaf\xe9 bad\t0\n", r"train.tsv:3: not valid UTF-8"),
])
def test_malformed_files_name_the_file_and_line(tmp_path, content, message):
    path = _sst2_dir(tmp_path, content)
    with pytest.raises(DataFormatError, match=message) as info:
        load_glue_dir(get_task("sst2"), tmp_path)
    assert info.value.path == path


def test_bad_stsb_score_and_bad_snli_json(tmp_path):
    write_fixtures(tmp_path, ["stsb", "snli"])
    path = tmp_path / "STS-B" / "dev.tsv"
    lines = path.read_text().splitlines()
    lines[2] = "\t".join(lines[2].split("\t")[:-1] + ["high"])
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"dev.tsv:3: score 'high' is not a number"):
        load_glue_dir(get_task("stsb"), tmp_path)
    snli = tmp_path / "SNLI" / "snli_1.0_test.jsonl"
    snli.write_text(snli.read_text() + "{not json\n")
    with pytest.raises(DataFormatError, match=r"snli_1.0_test.jsonl:\d+: invalid JSON"):
        load_glue_dir(get_task("snli"), tmp_path)


def test_missing_folder_or_file_says_what_is_expected(tmp_path):
    with pytest.raises(DataError, match="no such directory"):
        load_glue_dir(get_task("cola"), tmp_path / "nowhere")
    with pytest.raises(DataError, match=r"expected a folder CoLA/"):
        load_glue_dir(get_task("cola"), tmp_path)
    (tmp_path / "MNLI").mkdir()
    (tmp_path / "MNLI" / "train.tsv").write_text("x\n")
    with pytest.raises(DataError, match=r"missing dev_matched.tsv"):
        load_glue_dir(get_task("mnli"), tmp_path)


def test_hub_fails_fast_offline_with_a_way_forward():
    started = time.perf_counter()
    with pytest.raises(DataError) as info:
        load_task_data(get_task("sst2"))
    assert time.perf_counter() - started < 15
    assert "--data-dir" in str(info.value) and "--tiny" in str(info.value)


def test_subsampling_is_seeded_and_applies_per_split(glue_dir):
    task = get_task("mnli")
    a = load_task_data(task, glue_dir, max_train_samples=10, max_eval_samples=4, seed=1)
    b = load_task_data(task, glue_dir, max_train_samples=10, max_eval_samples=4, seed=1)
    c = load_task_data(task, glue_dir, max_train_samples=10, max_eval_samples=4, seed=2)
    assert len(a["train"]) == 10
    assert len(a["validation_matched"]) == len(a["validation_mismatched"]) == 4
    assert a["train"]["premise"] == b["train"]["premise"]
    assert a["train"]["premise"] != c["train"]["premise"]


def test_tiny_source_equals_reading_the_written_fixtures(glue_dir):
    tiny = load_task_data(get_task("cola"), tiny=True)
    direct = load_glue_dir(get_task("cola"), glue_dir)
    assert tiny["train"]["sentence"] == direct["train"]["sentence"]


def test_a_stray_carriage_return_stays_inside_its_field(tmp_path):
    _sst2_dir(tmp_path, b"sentence\tlabel\r\ngood\rfilm\t1\r\nbad film\t0\n")
    ds = load_glue_dir(get_task("sst2"), tmp_path)["train"]
    assert ds["sentence"] == ["good\rfilm", "bad film"] and ds["label"] == [1, 0]


def test_headerless_cola_rows_need_exactly_four_fields(tmp_path):
    (tmp_path / "CoLA").mkdir()
    good = "gj04\t1\t\tThe sailors rode the breeze.\n"
    (tmp_path / "CoLA" / "dev.tsv").write_text(good)
    (tmp_path / "CoLA" / "train.tsv").write_text(good + "gj04\t1\t\tA tab\there.\n")
    with pytest.raises(DataFormatError, match=r"train.tsv:2: found 5 tab-separated fields, "
                                              r"expected 4 \(as the file layout\)"):
        load_glue_dir(get_task("cola"), tmp_path)


@pytest.mark.parametrize("task,folder,column", [
    ("mrpc", "MRPC", "#1 String"),  # was read as sentence1 '"Profit rose', sentence2 the rest
    ("mnli", "MNLI", "sentence1"),  # the label came from `label1`, itself a valid label
])
def test_a_row_with_an_extra_field_is_refused_not_shifted(glue_dir, tmp_path, task, folder,
                                                          column):
    import shutil

    path = shutil.copytree(glue_dir / folder, tmp_path / folder) / "train.tsv"
    lines = path.read_text().splitlines()
    fields = lines[2].split("\t")
    at = lines[0].split("\t").index(column)
    fields[at] = fields[at].replace(" ", "\t", 1)  # a tab inside the sentence
    lines[2] = "\t".join(fields)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataFormatError, match=r"train.tsv:3: found \d+ tab-separated fields"):
        load_glue_dir(get_task(task), tmp_path)


@pytest.mark.parametrize("line,message", [
    ('["entailment", "a", "b"]', r"snli_1.0_train.jsonl:1: expected a JSON object, found list"),
    ('"just a string"', r"expected a JSON object, found str"),
    ('{"gold_label": "neutral", "sentence1": "A dog.", "sentence2": null}',
     r"snli_1.0_train.jsonl:1: 'sentence2' is null, expected a string"),
    ('{"gold_label": 1, "sentence1": "A dog.", "sentence2": "A cat."}',
     r"'gold_label' is 1, expected a string"),
])
def test_snli_jsonl_lines_must_be_objects_with_string_fields(glue_dir, tmp_path, line, message):
    import shutil

    folder = shutil.copytree(glue_dir / "SNLI", tmp_path / "SNLI")
    for old in folder.glob("snli_1.0_train.*"):
        old.unlink()
    (folder / "snli_1.0_train.jsonl").write_text(line + "\n")
    with pytest.raises(DataFormatError, match=message):
        load_glue_dir(get_task("snli"), tmp_path)


@pytest.mark.parametrize("make,message", [
    (lambda p: p.mkdir(), r"dev.tsv is a directory; the validation split must be a file"),
    (lambda p: p.symlink_to(p), r"dev.tsv is a symlink that leads nowhere \(broken, or a loop\)"),
])
def test_a_dev_file_that_is_not_a_file_says_what_it_is(tmp_path, make, message):
    from d2l_utils.data import DataError

    path = _sst2_dir(tmp_path, "sentence\tlabel\ngood\t1\n").with_name("dev.tsv")
    path.unlink()
    make(path)
    with pytest.raises(DataError, match=message):
        load_glue_dir(get_task("sst2"), tmp_path)
