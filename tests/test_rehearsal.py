"""The Colab run, rehearsed: every chapter notebook, unmodified, in its gpu (real) profile, on the
CPU, against a local hub mirror (tools/hub_mirror.py served by olah) and the mirror's asset
server, with only the rehearsal caps set from outside.

    python -m pytest -m rehearsal tests/test_rehearsal.py

Deselected by default (pyproject addopts). One mirror serves the whole session (built in about
25 s; olah installed once from PyPI into $D2L_OLAH_VENV). Each chapter runs in a fresh Jupyter
kernel whose environment says only: the mirror (HF_ENDPOINT, D2L_ASSET_URL and the stand-in
zip's hash in D2L_ASSET_SHA1, since its weights are random), an empty HF_HOME and asset cache of
its own, its own output folder (also the working directory), and the caps
D2L_MAX_STEPS=2, D2L_MAX_EVAL_SAMPLES=32, D2L_MAX_BATCH_SIZE=4. No profile variable is set: the
notebook runs exactly what Colab runs, only shorter. Any exception fails the chapter.

Then each test checks WHAT the chapter ran on: the run records it wrote (hub models
bert-base-uncased / roberta-base, data source "hub", profile gpu, the caps), the hub caches its
downloads went to, and for chapter 1 d2l's bert.small from the asset server (pretrained, the
served zip's hash) on stanfordnlp/snli; recipes that save checkpoints save one within the cap,
and chapter 3's methods train exactly the seed's parameter counts. `D2L_REHEARSAL_KEEP=DIR`
keeps each executed notebook (with outputs) in DIR for reading.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from d2l_utils.pages.references import COURSE_TRAINABLE
from d2l_utils.pages.time_budget import chapter_runs

ROOT = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((ROOT / "notebooks").glob("0[1-6]*.ipynb"))
CAPS = {"D2L_MAX_STEPS": "2", "D2L_MAX_EVAL_SAMPLES": "32", "D2L_MAX_BATCH_SIZE": "4"}
CELL_TIMEOUT_S = 900
# Variables that would change what a chapter runs or where it reads and writes: the kernel gets
# none of them from this process (the suite itself runs with D2L_TINY=1 and offline).
CLEARED = ("D2L_TINY", "D2L_PROFILE", "D2L_DATA_DIR", "D2L_OUTPUT_DIR", "D2L_CACHE_DIR",
           "D2L_ASSET_SHA1", "HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE",
           "D2L_OFFLINE", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE",
           "TRANSFORMERS_CACHE", "HF_ASSETS_CACHE", "HF_XET_CACHE", "MPLBACKEND",
           *(name for name in os.environ if name.startswith("PYTEST_")))


def expected_records(chapter: str) -> tuple[set[str], int, set[str]]:
    """(models, number of records, tasks) of the chapter's gpu-profile runs, read from its
    settings cell (the one declaration the Time budget page reads too)."""
    runs = chapter_runs(int(chapter))
    return ({r.model for r in runs}, sum(r.repeats for r in runs if r.writes_record),
            {r.task for r in runs})


# Run in the chapter's kernel after its last cell: what chapter 1 loaded (it writes no record).
CHAPTER1_PROBE = """
import json as _json
print("REHEARSAL-PROBE " + _json.dumps({
    "pretrained": chapter.pretrained, "name": chapter.name, "label": MODEL_LABEL,
    "message": chapter.message, "train_pairs": len(train_set), "epochs": len(history["epoch"]),
    "cache_files": [f["filename"] for split in data.values() for f in split.cache_files]}))
"""

pytestmark = pytest.mark.rehearsal


@pytest.fixture(scope="session")
def mirror(tmp_path_factory):
    from hub_mirror_fixture import served_mirror

    started = time.perf_counter()
    with served_mirror(tmp_path_factory.mktemp("rehearsal_mirror")) as served:
        print(f"\nmirror built and served in {time.perf_counter() - started:.0f} s",
              file=sys.stderr)
        yield served
    shutil.rmtree(served.root, ignore_errors=True)  # 1.3 GB; pytest keeps its last tmp dirs


def kernel_env(endpoint: str, asset_url: str, zip_sha1: str, work: Path) -> dict[str, str]:
    """The chapter kernel's environment: this process's, less CLEARED, plus the mirror, the
    caps and the chapter's own folders."""
    env = {k: v for k, v in os.environ.items() if k not in CLEARED}
    env.update(CAPS)
    env.update(HF_ENDPOINT=endpoint, D2L_ASSET_URL=asset_url,
               D2L_ASSET_SHA1=f"bert.small={zip_sha1}", HF_HOME=str(work / "hf_home"),
               D2L_CACHE_DIR=str(work / "d2l_cache"), D2L_OUTPUT_DIR=str(work / "runs"),
               TOKENIZERS_PARALLELISM="false", HF_HUB_DISABLE_TELEMETRY="1",
               PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")])))
    return env


def execute_chapter(path: Path, work: Path, env: dict[str, str], probe: str | None = None
                    ) -> tuple[dict, list[tuple[int, float]]]:
    """Run every cell of `path` (unchanged) in a fresh kernel with `env`, in `work`; then `probe`
    in the same kernel. Returns the probe's JSON ({} without one) and (cell index, seconds) of
    each code cell. A cell's exception raises nbclient's CellExecutionError with its traceback."""
    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(notebook, timeout=CELL_TIMEOUT_S, kernel_name="python3",
                            resources={"metadata": {"path": str(work)}})
    timings, found = [], {}
    keep = os.environ.get("D2L_REHEARSAL_KEEP")
    try:
        with client.setup_kernel(env=env, cwd=str(work)):
            for index, cell in enumerate(notebook.cells):
                if cell.cell_type != "code":
                    continue
                started = time.perf_counter()
                client.execute_cell(cell, index)
                timings.append((index, round(time.perf_counter() - started, 1)))
            if probe:
                cell = nbformat.v4.new_code_cell(probe)  # after the chapter's last cell
                notebook.cells.append(cell)
                client.execute_cell(cell, len(notebook.cells) - 1)
                text = "".join(o.get("text", "") for o in cell.outputs if o.get("name") ==
                               "stdout")
                line = [t for t in text.splitlines() if t.startswith("REHEARSAL-PROBE ")][-1]
                found = json.loads(line.removeprefix("REHEARSAL-PROBE "))
    finally:
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            nbformat.write(notebook, Path(keep) / path.name)
    return found, timings


def hub_cache(work: Path) -> set[str]:
    """What the chapter downloaded through the mirror: hub repos and dataset builders."""
    home = work / "hf_home"
    names = {p.name for p in (home / "hub").glob("*--*")} if (home / "hub").is_dir() else set()
    if (home / "datasets").is_dir():
        names |= {p.name for p in (home / "datasets").iterdir() if "___" in p.name}
    return names


def records_of(work: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(work.rglob("record.json"))]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name[:2])
def test_chapter_runs_its_real_recipe_against_the_mirror(path, mirror, tmp_path):
    chapter = path.name[:2]
    work = tmp_path / f"ch{chapter}"
    work.mkdir()
    sha1 = mirror.manifest["assets"]["files"]["bert.small.torch.zip"]
    env = kernel_env(mirror.endpoint, mirror.asset_url, sha1, work)
    started = time.perf_counter()
    try:
        probe, timings = execute_chapter(path, work, env,
                                         CHAPTER1_PROBE if chapter == "01" else None)
        seconds = time.perf_counter() - started
        slow = sorted(timings, key=lambda t: -t[1])[:3]
        print(f"\n{path.name}: {seconds:.0f} s (slowest cells: "
              f"{', '.join(f'#{i} {s:.0f} s' for i, s in slow)})", file=sys.stderr)
        cached = hub_cache(work)
        if chapter == "01":
            assert probe["pretrained"] and probe["name"] == "bert.small", probe
            assert probe["label"] == "bert.small (pretrained)"
            assert mirror.asset_url + "bert.small.torch.zip" in probe["message"]
            from d2l_utils.scratch.assets import sha1sum

            assert sha1sum(work / "d2l_cache" / "bert.small.torch.zip") == sha1
            assert "stanfordnlp___snli" in cached, cached
            assert probe["cache_files"] and all(str(work / "hf_home") in f and "snli" in f
                                                for f in probe["cache_files"])
            assert probe["epochs"] == 1  # D2L_MAX_STEPS=2: two steps of 4 pairs, one epoch
            return
        (model,), count, tasks = expected_records(chapter)
        records = records_of(work)
        assert len(records) == count, [r["args"]["output_dir"] for r in records]
        assert {r["task"] for r in records} == tasks
        for record in records:
            where = record["args"]["output_dir"]
            assert record["model"] == model and record["pretrained"], where
            assert record["data"]["source"] == "hub" and record["profile"] == "gpu", where
            assert record["caps"] == {"max_steps": 2, "max_eval_samples": 32,
                                      "max_batch_size": 4}, where
            assert 0 < record["steps"] <= 2, (where, record["steps"])
            assert all(n <= 32 for n in record["data"]["eval_examples"].values()), where
            assert record["args"]["batch_size"] <= 4, where
            if record["args"]["save_every_steps"]:  # the recipe's checkpoint, within the cap
                folder = work / where
                assert (any(folder.glob("checkpoint-*"))
                        or any((folder / "checkpoints").glob("step-*"))), where
            if chapter == "03":  # with the hub weights, exactly what the course notebook trained
                assert record["params"]["trainable"] == COURSE_TRAINABLE[3][
                    record["method"]], where
        assert f"models--{model}" in cached, cached
        assert "nyu-mll___glue" in cached, cached
    finally:  # up to 500 MB of downloaded weights and 1.3 GB of checkpoints
        shutil.rmtree(work, ignore_errors=True)
