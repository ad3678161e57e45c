"""The tools behave like the CLI: bad arguments are one `error:` line (argparse's usage line for a
malformed value) and exit 2 before any work, a file they cannot use one line naming it, never a
traceback; and `snli_split.py` writes every sentence exactly as it read it."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def load_tool(name: str):
    """A script in tools/ (a package) as a module."""
    return importlib.import_module(f"tools.{name}")


def call(capsys, main, *argv: str) -> tuple[int, str]:
    """(exit status, stderr) of a tool's main, argparse's own exit included."""
    try:
        code = main(list(argv))
    except SystemExit as exit_:
        code = exit_.code
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    return code, err


def error_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if "error:" in line]


# ---------------------------------------------------------------------------------------------
# snli_split.py


SENTENCES = ['He kept saying "hello 12".', r"A path C:\new\table and a \"quoted\" one.",
             "Plain text.", "'Single' quotes, a trailing backslash \\", "Tabs never; \"x\"."]


@pytest.fixture
def snli_source(tmp_path) -> Path:
    labels = ["entailment", "neutral", "contradiction"]
    rows = [f"{labels[i % 3]}\t{SENTENCES[i % 5]} #{i}\tSomeone \"speaks\" \\ {i}."
            for i in range(30)]
    source = tmp_path / "dev.txt"
    source.write_text("gold_label\tsentence1\tsentence2\n" + "\n".join(rows) + "\n")
    return source


def test_snli_split_writes_and_reads_back_every_sentence_unchanged(tmp_path, capsys,
                                                                   snli_source):
    from d2l_utils.data import load_task_data
    from d2l_utils.tasks import get_task

    code, _ = call(capsys, load_tool("snli_split").main, str(snli_source), str(tmp_path / "out"),
                   "--dev", "5", "--test", "5")
    assert code == 0
    source_rows = [line.split("\t") for line in snli_source.read_text().splitlines()[1:]]
    written = []
    for name in ("train", "dev", "test"):
        lines = (tmp_path / "out" / "SNLI" / f"snli_1.0_{name}.txt").read_text().splitlines()
        written += [line.split("\t") for line in lines[1:]]
    assert sorted(written) == sorted(source_rows)  # byte for byte: no escape added
    data = load_task_data(get_task("snli"), data_dir=tmp_path / "out")
    read = sorted(p for split in data.values() for p in split["premise"])
    assert read == sorted(row[1] for row in source_rows)


@pytest.mark.parametrize("options,message", [
    (["--dev", "-1", "--test", "-1"], "argument --dev: must be at least 1"),
    (["--dev", "0"], "argument --dev: must be at least 1 (a split is never empty), got 0"),
    (["--test", "0"], "argument --test: must be at least 1"),
])
def test_snli_split_refuses_negative_or_empty_splits(tmp_path, capsys, snli_source, options,
                                                     message):
    code, err = call(capsys, load_tool("snli_split").main, str(snli_source),
                     str(tmp_path / "out"), *options)
    assert code == 2 and message in err
    assert not (tmp_path / "out").exists()


def test_snli_split_into_a_file_or_from_latin1_is_one_line(tmp_path, capsys, snli_source):
    tool = load_tool("snli_split")
    target = tmp_path / "a-file"
    target.write_text("not a folder")
    code, err = call(capsys, tool.main, str(snli_source), str(target), "--dev", "2",
                     "--test", "2")
    assert code == 2 and error_lines(err) == [f"error: {target}: not a folder"]
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("gold_label\tsentence1\tsentence2\nneutral\tcaf\u00e9\tx\n"
                       .encode("latin-1"))
    code, err = call(capsys, tool.main, str(latin1), str(tmp_path / "out"))
    assert code == 1
    assert error_lines(err) == [f"error: {latin1}: not valid UTF-8 (invalid continuation byte "
                                "at byte 42); re-save the file as UTF-8"]


# ---------------------------------------------------------------------------------------------
# colab_check.py: a file it cannot use means the check could not run (exit 2), never a traceback


@pytest.mark.parametrize("freeze,requirements,message", [
    (None, "numpy>=1\n", "--freeze {freeze}: no such file"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", "numpy>=1\n",
     "--freeze {freeze}: not a text file (invalid start byte at byte 0)"),
    ("numpy==2.0.2\nthis is not a freeze line\n", "numpy>=1\n",
     "--freeze {freeze}: line 2: not a pip freeze line: 'this is not a freeze line'"),
    ("", "numpy>=1\n", "--freeze {freeze}: no `name==version` line"),
    ("numpy==2.0.2\n", "numpy>=>1  # why\n",
     "--requirements {requirements}: line 1: bad requirement 'numpy>=>1  # why'"),
])
def test_colab_check_with_an_unusable_file_is_one_line_and_exit_2(tmp_path, capsys, freeze,
                                                                  requirements, message):
    tool = load_tool("colab_check")
    paths = {"freeze": tmp_path / "freeze.txt", "requirements": tmp_path / "req.txt"}
    for name, content in (("freeze", freeze), ("requirements", requirements)):
        if isinstance(content, bytes):
            paths[name].write_bytes(content)
        elif content is not None:
            paths[name].write_text(content)

    def never(*args):
        raise AssertionError("the check ran uv on an unusable file")

    tool.run_uv = never
    code, err = call(capsys, tool.main, "--freeze", str(paths["freeze"]), "--requirements",
                     str(paths["requirements"]))
    assert code == 2
    assert len(error_lines(err)) == 1
    assert error_lines(err)[0].startswith(f"error: {message.format(**paths)}")


# ---------------------------------------------------------------------------------------------
# hub_mirror.py


def test_hub_mirror_build_into_a_file_is_exit_2(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("")
    code, err = call(capsys, load_tool("hub_mirror").main, "build", "--out", str(target))
    assert code == 2 and error_lines(err) == [f"error: --out {target}: not a folder"]


def test_hub_mirror_serve_with_a_bad_port_is_exit_2(tmp_path, capsys):
    code, err = call(capsys, load_tool("hub_mirror").main, "serve", "--out", str(tmp_path),
                     "--port", "99999")
    assert code == 2
    assert "argument --port: must be a port between 1 and 65535, got 99999" in err


def test_hub_mirror_build_from_a_malformed_glue_file_names_it_and_builds_nothing(tmp_path,
                                                                                  capsys):
    from d2l_utils.fixtures import write_fixtures

    glue = write_fixtures(tmp_path / "glue", ["sst2"])
    (glue / "SST-2" / "train.tsv").write_text("sentence\tlabel\ngood\t1\nbad\t1\textra\n")
    out = tmp_path / "mirror"
    code, err = call(capsys, load_tool("hub_mirror").main, "build", "--out", str(out),
                     "--glue-dir", str(glue))
    assert code == 1
    assert error_lines(err) == [f"error: {glue.resolve()}/SST-2/train.tsv:3: found 3 "
                                "tab-separated fields, expected 2 (as the header); is there a "
                                "tab inside a sentence, or a missing one?"]
    assert not (out / "mirrors").exists()


@pytest.mark.parametrize("option,value,message", [
    ("--output-dir", "FILE", "a file, not a folder"),
    ("--timeout", "0", "positive number of seconds"),
    ("--chapters", "9", "the chapters are"),
    ("--data-dir", "MISSING", "no such folder"),
])
def test_run_chapters_refuses_bad_arguments_before_running(tmp_path, capsys, option, value,
                                                           message):
    (tmp_path / "FILE").write_text("not a folder")
    value = str(tmp_path / value) if value.isupper() else value
    with pytest.raises(SystemExit) as exit_info:
        load_tool("run_chapters").main(["--no-collect", option, value])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_build_book_refuses_an_unknown_option(capsys):
    with pytest.raises(SystemExit) as exit_info:
        load_tool("build_book").main(["--clena"])
    assert exit_info.value.code == 2 and "unrecognized arguments" in capsys.readouterr().err
