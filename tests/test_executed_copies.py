"""The chapters' executed copies: scrubbed when kept, merged cell by cell into the website's
pages, and a page whose copy is out of date or missing says so."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from tools.executed_copies import (
    MAX_BYTES,
    NOTICE_TAG,
    RUN_KEY,
    code_sources,
    is_stale,
    merge,
    page_notebook,
    refresh_time_header,
    scrub,
)

ROOT = Path(__file__).resolve().parent.parent
RUN = {"profile": "cpu", "commit": "0123456789abcdef", "started": "2026-12-07T03:00:00+00:00",
       "wall_time_s": 384.0, "data": "cpu", "models": ["minilm-l6"], "tasks": ["SNLI"],
       "precision": ["fp32"], "hardware": {"cpu": "AMD EPYC", "cores": 2, "gpu": None}}


def notebook(*sources: str) -> nbformat.NotebookNode:
    """A chapter-shaped notebook: a title cell, then one code cell per source."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Chapter 9\n\n## Prerequisites\n\nnone")]
    nb.cells += [nbformat.v4.new_code_cell(source) for source in sources]
    return nb


def executed(*sources: str) -> nbformat.NotebookNode:
    """The same notebook as executed: each code cell printed its own source."""
    nb = notebook(*sources)
    for cell in nb.cells[1:]:
        cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran {cell.source}")]
    nb.metadata[RUN_KEY] = RUN
    return nb


def test_scrub_drops_run_to_run_noise_and_absolute_paths():
    nb = notebook("train()")
    cell = nb.cells[1]
    cell.metadata["execution"] = {"iopub.status.busy": "2026-12-07T03:00:00"}
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="100%|####| 12/12 [00:03<00:00]"),
        nbformat.v4.new_output("stream", name="stdout", text="wrote /tmp/x/runs/ch09/lora\n"),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abc"},
            "text/plain": "HBox()"}),
        nbformat.v4.new_output("display_data", data={
            "application/vnd.jupyter.widget-view+json": {"model_id": "abd"}}),
        nbformat.v4.new_output("display_data", data={  # the Trainer's progress bar and table
            "text/plain": "<IPython.core.display.HTML object>",
            "text/html": "<div><progress value='162' max='162'></progress> [162/162 00:56]</div>"}),
    ]
    nb.metadata["widgets"] = {"state": {}}
    scrub(nb, {"/tmp/x/runs/ch09": "runs/ch09", "/tmp/x": "."})
    outputs = nb.cells[1].outputs
    assert [o.output_type for o in outputs] == ["stream", "display_data"]
    assert outputs[0].text == "wrote runs/ch09/lora\n"
    assert list(outputs[1].data) == ["text/plain"]
    assert "execution" not in nb.cells[1].metadata and "widgets" not in nb.metadata


def test_merge_keeps_outputs_of_unchanged_cells_only():
    ran = executed("a = 1", "b = 2", "print(a + b)")
    now = notebook("a = 1", "b = 3", "print(a + b)", "extra()")
    assert is_stale(now, ran) and not is_stale(notebook("a = 1", "b = 2", "print(a + b)"), ran)
    merged = merge(now, ran)
    outputs = [cell.outputs for cell in merged.cells if cell.cell_type == "code"]
    assert outputs[0][0].text == "ran a = 1" and outputs[2][0].text == "ran print(a + b)"
    assert outputs[1] == [] and outputs[3] == []  # changed and new cells show nothing
    assert code_sources(merged) == code_sources(now)  # today's code, never the old one
    assert merged.metadata[RUN_KEY] == RUN


@pytest.mark.parametrize("state", ["fresh", "stale", "missing"])
def test_the_page_says_where_its_outputs_come_from(tmp_path, state):
    path = tmp_path / "09_chapter.ipynb"
    nbformat.write(notebook("a = 1", "b = 2"), path)
    copies = tmp_path / "executed"
    copies.mkdir()
    if state != "missing":
        sources = ("a = 1", "b = 2") if state == "fresh" else ("a = 1", "b = 1")
        nbformat.write(executed(*sources), copies / path.name)
    page, stale = page_notebook(path, copies)
    assert stale == (state != "fresh")
    notice = page.cells[1]
    assert notice.cell_type == "markdown" and NOTICE_TAG in notice.metadata["tags"]
    assert page.cells[0].source.startswith("# Chapter 9")  # the notice follows the title cell
    if state == "missing":
        assert "has not been run by the book" in notice.source
    else:
        assert "cpu profile" in notice.source and "`0123456`" in notice.source
        assert "6 minutes" in notice.source and "AMD EPYC" in notice.source
        assert ("earlier version" in notice.source) == (state == "stale")


def test_keep_executed_copy_scrubs_and_stamps_the_notebook(tmp_path, monkeypatch):
    import tools.executed_copies as copies
    from tools import run_chapters

    monkeypatch.setattr(copies, "EXECUTED", tmp_path / "executed")
    run_dir = tmp_path / "runs" / "ch09"
    (run_dir / "lora").mkdir(parents=True)
    (run_dir / "lora" / "record.json").write_text(json.dumps(
        {"task": "sst2", "model": "minilm-l6", "mixed_precision": "bf16"}))
    raw = executed("train()")
    raw.cells[1].outputs.append(nbformat.v4.new_output(
        "stream", name="stdout", text=f"record: {run_dir}/ch09/lora/record.json\n"))
    raw.cells[1].outputs.append(nbformat.v4.new_output(  # a live progress display, ended blank
        "display_data", data={"text/plain": "\n", "text/html": "<pre></pre>"}))
    raw_path = tmp_path / "raw" / "09_chapter.ipynb"
    raw_path.parent.mkdir()
    nbformat.write(raw, raw_path)
    provenance = {"chapter": 9, "profile": "cpu", "started": RUN["started"],
                  "notebook_wall_time_s": 12.5, "data_dir": "cpu", "hardware": RUN["hardware"],
                  "load_average_1min": {"before": 3.0, "after": 2.0}}
    kept = run_chapters.keep_executed_copy(Path("notebooks/09_chapter.ipynb"), raw_path, run_dir,
                                           provenance)
    assert kept == tmp_path / "executed" / "09_chapter.ipynb"
    nb = nbformat.read(kept, as_version=4)
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert "record: runs/ch09/lora/record.json" in text and str(tmp_path) not in text
    assert all(o.output_type == "stream" for o in nb.cells[1].outputs)  # no blank display
    stamp = nb.metadata[RUN_KEY]
    assert stamp["models"] == ["minilm-l6"] and stamp["tasks"] == ["SST-2"]
    assert stamp["precision"] == ["bf16"] and stamp["wall_time_s"] == 12.5
    assert stamp["load_average"] == 2.5
    assert len(stamp["commit"]) >= 7


def test_committed_executed_copies_are_small_and_scrubbed():
    for path in sorted((ROOT / "results" / "executed").glob("*.ipynb")):
        assert path.stat().st_size < MAX_BYTES, f"{path.name}: over 2 MiB"
        text = path.read_text(encoding="utf-8")
        assert str(ROOT) not in text and str(Path.home()) + "/" not in text, path.name
        nb = nbformat.read(path, as_version=4)
        assert nb.metadata.get(RUN_KEY, {}).get("profile") in ("cpu", "gpu"), path.name
        streams = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs
                   if o.output_type == "stream"]
        assert all(o.name == "stdout" for o in streams), f"{path.name} keeps stderr"


def test_the_header_shows_the_time_of_the_run_on_the_page():
    """At run time the header cell reads the previous run's record; the kept copy gets this
    run's time (the page said 100 min beside a 57-min run before)."""
    from d2l_utils.pages.time_budget import estimate_text, measured_time_text

    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_markdown_cell("# Chapter 5"),
        nbformat.v4.new_code_cell("from d2l_utils.pages.time_budget import chapter_time\n\n"
                                  "chapter_time(5)", outputs=[nbformat.v4.new_output(
                                      "stream", name="stdout", text="MEASURED 100 min\n")])])
    assert refresh_time_header(nb, 5)
    [output] = nb.cells[1].outputs
    assert output["text"] == f"{measured_time_text(5)}\n{estimate_text(5)}\n"
    assert "results/records/ch05" in output["text"]
    assert not refresh_time_header(nb, 6)  # no header cell for that chapter
