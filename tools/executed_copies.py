"""The chapters' executed copies: what the website shows on each chapter page.

`tools/run_chapters.py` keeps every chapter notebook it executed in the cpu profile as
`results/executed/NN_name.ipynb`, scrubbed of what changes from run to run for no reason
(absolute paths, progress bars, timestamps, widget state) and stamped with where it ran.
`tools/build_book.py` renders the clean notebook from `notebooks/` with the outputs of its
executed copy, cell by cell, and says at the top of the page where they come from; a chapter
whose code changed since its copy was made says so (`stale`).
"""

from __future__ import annotations

import copy
import difflib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXECUTED = ROOT / "results" / "executed"
MAX_BYTES = 2 * 2**20  # an executed copy stays under 2 MiB
RUN_KEY = "d2l_run"  # notebook metadata: profile, commit, hardware, wall time, models, data
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
NOTICE_TAG = "d2l-provenance"  # the cell build_book inserts: tests find it by this tag
MODEL_NAMES = {"minilm-l6": "MiniLM-L6"}  # how the provenance line writes a model
PRECISION_NAMES = {"no": "fp32", "bf16": "bfloat16", "fp16": "fp16"}


def executed_path(notebook: Path) -> Path:
    """Where the executed copy of `notebooks/NN_name.ipynb` lives."""
    return EXECUTED / notebook.name


def _scrub_text(text: str, replacements: dict[str, str]) -> str:
    for old, new in replacements.items():
        text = text.replace(old, new)
    return text


def scrub(nb: Any, replacements: dict[str, str]) -> Any:
    """Drop what differs between two runs of the same code: stderr streams (progress bars and
    library notices), widget outputs and state, the Trainer's HTML progress bars (their epoch
    tables repeat what the run records and plots show), execution timestamps; and replace the
    absolute paths in `replacements` (longest first) by stable names."""
    ordered = dict(sorted(replacements.items(), key=lambda kv: -len(kv[0])))
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        cell.metadata.pop("execution", None)
        if cell.cell_type != "code":
            continue
        outputs = []
        for output in cell.get("outputs", []):
            if output.output_type == "stream":
                if output.name == "stderr":
                    continue
                output.text = _scrub_text(output.text, ordered)
            elif output.output_type in ("display_data", "execute_result"):
                output.data.pop(WIDGET_MIME, None)
                if not output.data or not str(output.data.get("text/plain", "x")).strip():
                    continue  # a widget, or a live progress display that ended blank
                if "<progress" in str(output.data.get("text/html", "")):
                    continue  # transformers' NotebookProgressCallback
                for mime, value in output.data.items():
                    if mime.startswith("text/") and isinstance(value, str):
                        output.data[mime] = _scrub_text(value, ordered)
            elif output.output_type == "error":
                output.traceback = [_scrub_text(line, ordered) for line in output.traceback]
            outputs.append(output)
        cell.outputs = outputs
    return nb


def code_sources(nb: Any) -> list[str]:
    """The source of every code cell, in order, trailing whitespace ignored."""
    return [cell.source.rstrip() for cell in nb.cells if cell.cell_type == "code"]


def refresh_time_header(nb: Any, chapter: int) -> bool:
    """Give the chapter's header cell (`chapter_time(N)`) the time of the run just recorded.

    When the chapter ran, that cell could only read the previous run's record, so the page would
    show the old time beside the new run's outputs. Returns False when no cell calls it."""
    import contextlib
    import io

    import nbformat

    from d2l_utils.pages.time_budget import chapter_time

    for cell in nb.cells:
        if cell.cell_type == "code" and f"chapter_time({chapter})" in cell.source:
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                chapter_time(chapter)
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout",
                                                   text=printed.getvalue())]
            return True
    return False


def is_stale(clean: Any, executed: Any) -> bool:
    """True when the chapter's code cells differ from those its executed copy ran."""
    return code_sources(clean) != code_sources(executed)


def merge(clean: Any, executed: Any) -> Any:
    """The clean notebook (today's text, tags and code) with the outputs of `executed` on every
    code cell whose source is unchanged; a changed or new code cell has no output."""
    merged = copy.deepcopy(clean)
    ours = [cell for cell in merged.cells if cell.cell_type == "code"]
    theirs = [cell for cell in executed.cells if cell.cell_type == "code"]
    matcher = difflib.SequenceMatcher(a=[c.source.rstrip() for c in ours],
                                      b=[c.source.rstrip() for c in theirs], autojunk=False)
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            cell, ran = ours[block.a + k], theirs[block.b + k]
            cell.outputs = copy.deepcopy(ran.get("outputs", []))
            cell.execution_count = ran.get("execution_count")
    merged.metadata[RUN_KEY] = executed.metadata.get(RUN_KEY, {})
    return merged


def provenance_line(run: dict[str, Any]) -> str:
    """One sentence: which profile, model, data, hardware, precision and commit the outputs on
    the page come from, and how long the chapter took."""
    hardware = run.get("hardware", {})
    machine = f"{hardware.get('cores', '?')}-core {hardware.get('cpu', 'CPU')}"
    if hardware.get("gpu"):
        machine = f"{hardware['gpu']} GPU"
    models = ", ".join(MODEL_NAMES.get(m, m) for m in run.get("models", [])) or "?"
    tasks = ", ".join(run.get("tasks", [])) or "?"
    precision = ", ".join(sorted({PRECISION_NAMES.get(p, p) for p in run.get("precision", [])}))
    minutes = run.get("wall_time_s", 0) / 60
    commit = run.get("commit", "?")[:7]
    shared = (" while other jobs shared the machine, so the time is longer than on a quiet one"
              if run.get("load_average", 0) > hardware.get("cores", 1) else "")
    return (f"**The outputs on this page** are the book's own run of this chapter in the "
            f"**{run.get('profile', '?')} profile**: {models} on the real {tasks} files, on a "
            f"{machine} in {precision or 'fp32'}; commit `{commit}`, "
            f"{run.get('started', '?')[:10]}, **{minutes:.0f} minutes** for the whole "
            f"chapter{shared}. Run on your own machine, the notebook picks its profile from "
            "`D2L_PROFILE` (see [Setup](../book/setup.md)).")


def notice_cell(nb_module: Any, run: dict[str, Any] | None, stale: bool) -> Any:
    """The markdown cell at the top of a chapter page that says where its outputs come from."""
    if not run:
        text = (":::{warning}\nThis chapter has not been run by the book yet in its current "
                "form, so the page shows its code without outputs; the "
                "[Results](../book/results.md) page shows the records of its last run. "
                "`python tools/run_chapters.py --profile cpu --data-dir DIR --chapters N` "
                "makes its executed copy.\n:::")
    else:
        text = provenance_line(run)
        if stale:
            text += ("\n\n:::{warning}\nThese outputs come from an **earlier version** of this "
                     f"chapter (commit `{run.get('commit', '?')[:7]}`): its code has changed "
                     "since, and a cell whose code changed shows no output until the chapter "
                     "is run again.\n:::")
    cell = nb_module.v4.new_markdown_cell(text)
    cell.metadata["tags"] = [NOTICE_TAG]
    return cell


def page_notebook(notebook: Path, executed_dir: Path = EXECUTED) -> tuple[Any, bool]:
    """The notebook the website renders for `notebook`, and whether its outputs are stale
    (a chapter that was never run counts as stale). The notice goes after the first cell (the
    title, the idea and the prerequisites)."""
    import nbformat

    clean = nbformat.read(notebook, as_version=4)
    copy_path = executed_dir / notebook.name
    if copy_path.is_file():
        executed = nbformat.read(copy_path, as_version=4)
        stale = is_stale(clean, executed)
        page = merge(clean, executed)
        run = executed.metadata.get(RUN_KEY)
    else:
        page, stale, run = copy.deepcopy(clean), True, None
    page.metadata.setdefault("language_info", {"name": "python"})["pygments_lexer"] = "ipython3"
    page.cells.insert(1, notice_cell(nbformat, run, stale))
    return page, stale

