"""How long a chapter takes: its measured cpu-profile time, and an estimate for a Colab T4.

Measured: the book's own cpu-profile run of each chapter (`tools/run_chapters.py`), kept in
`results/records/chNN/chapter.json`. Estimated, never timed: the chapter's gpu-profile runs, read
from the one place they are declared, the notebook's cell tagged `parameters` (run with the gpu
profile in a throwaway namespace). A run takes its FLOPs divided by the FLOP/s a T4 sustains:

    FLOPs = (k N + 6 N_lora) x training tokens + 2 (N + N_lora) x evaluation tokens
    T4 FLOP/s = MFU x the T4's datasheet peak (`d2l_utils.flops.PEAK_FLOPS`)

N is the encoder's parameter count without embeddings, k the training FLOPs per token and
parameter (`d2l_utils.flops`, whose `k_factor` is importable from here too). Every example counts
as 128 tokens, the anchor's fixed padding (the library pads each batch to its longest example
only). The MFU comes from a measured throughput: the library loop's in a committed GPU check
(`d2l_utils.flops.load_gpu_check()`) when there is one, else the one the HF run_glue README's
MNLI time on a Titan RTX implies (`references.RUN_GLUE_ANCHOR`); fp32 runs take that README's
fp32/fp16 time ratio longer.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import statistics
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any
from unittest import mock

from ..arguments import RunArguments
from ..flops import FREEZE, FULL, Shape, encoder_params, k_factor, load_backbone, load_gpu_check
from ..profiles import PROFILE_ENV, TINY_ENV
from ..tasks import TASKS
from .plots import task_name
from .records import MAKE_RECORDS, chapter_manifest, chapter_time_minutes
from .references import RUN_GLUE_ANCHOR

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
SESSION_HOURS = 12.0  # the longest Colab session; free ones often end sooner


@dataclass(frozen=True)
class Run:
    """One gpu-profile training run of a chapter, as its parameters cell sets it up."""

    task: str
    method: str
    model: str
    epochs: float
    batch_size: float            # a search's mean where it samples the batch size
    label: str = ""
    trainable_layers: int = 0    # freezing: the last T layers train
    rank: int = 0                # LoRA's rank (A and B on query and value)
    extra_tokens: int = 0        # prompt tuning's virtual tokens on every example
    eval_every_steps: int = 0    # evaluations between epochs
    train_fraction: float = 1.0
    repeats: int = 1             # search trials or seeds: the same run this many times
    writes_record: bool = True   # False for search trials (the search keeps no run records)
    eval_cap: int = 0            # at most this many examples of each evaluation split (0: all)
    eval_splits: tuple[str, ...] = ()   # () = the task's own
    precision: str = "fp16"      # a T4 trains in fp16; chapter 1's own loop in fp32


@dataclass(frozen=True)
class Throughput:
    """The FLOP/s a T4 sustains in fp16 training, and the measurement it is scaled from."""

    flops_per_s: float
    mfu: float
    source: str


def backbone_shape(model: str) -> Shape:
    """A backbone's shape: d2l's `bert.small`/`bert.base` (chapter 1) or a shipped config."""
    if model.startswith("bert."):
        from ..scratch.bert import BERT_CONFIGS

        config = BERT_CONFIGS[model]
        return Shape(config.num_layers, config.num_hiddens, config.ffn_num_hiddens)
    return load_backbone(model)


def run_flops(run: Run, tokens_per_example: int = RUN_GLUE_ANCHOR.tokens_per_example) -> float:
    """Training and evaluation FLOPs of `run` (every trial), on the official split sizes."""
    shape = backbone_shape(run.model)
    n = encoder_params(shape)
    lora = run.rank * shape.layers * 2 * 2 * shape.hidden
    spec = TASKS[run.task]
    train = round(spec.official_sizes["train"] * run.train_fraction)
    steps = math.ceil(math.ceil(train / run.batch_size) * run.epochs)
    evaluations = math.ceil(run.epochs) + (steps // run.eval_every_steps
                                           if run.eval_every_steps else 0)
    evaluated = sum(min(spec.official_sizes[s], run.eval_cap or math.inf)
                    for s in run.eval_splits or spec.eval_splits)
    k = k_factor(run.method, shape.layers, run.trainable_layers)
    per_trial = ((k * n + 6 * lora) * train * run.epochs
                 + 2 * (n + lora) * evaluated * evaluations)
    return per_trial * (tokens_per_example + run.extra_tokens) * run.repeats


def t4_throughput(gpu_check: Mapping[str, Any] | None = None) -> Throughput:
    """The T4's training FLOP/s: its datasheet peak times the MFU of the library loop in a GPU
    check (`load_gpu_check()`'s JSON) when given, else the MFU the cited anchor implies."""
    from ..flops import datasheet_peak_for

    peak = datasheet_peak_for("T4") or 0.0
    jobs = [job for job in (gpu_check or {}).get("bench", []) if "library_loop" in job]
    gpu_peak = (gpu_check or {}).get("peaks", {}).get("datasheet")
    if jobs and gpu_peak:
        n = encoder_params(backbone_shape(gpu_check["settings"]["model"]))
        mfu = statistics.median(job["library_loop"]["tokens_per_s"] * job["flops_per_param"] * n
                                / gpu_peak for job in jobs)
        return Throughput(peak * mfu, mfu, f"the library loop's median MFU, measured on a "
                          f"{gpu_check['device_name']} by benchmarks/gpu_check.py")
    anchor = RUN_GLUE_ANCHOR
    tokens = TASKS[anchor.task].official_sizes["train"] * anchor.epochs * anchor.tokens_per_example
    n = encoder_params(load_backbone("bert-base-uncased"))   # bert-base-cased: the same shape
    mfu = 6 * n * tokens / anchor.seconds["fp16"] / datasheet_peak_for(anchor.gpu)
    return Throughput(peak * mfu, mfu, f"the MFU of the {anchor.model} {task_name(anchor.task)} "
                      f"time in the HF run_glue README on a {anchor.gpu} (cited, not measured "
                      "here)")


def run_hours(run: Run, throughput: Throughput) -> float:
    """Estimated hours of `run` on a T4 at `throughput`."""
    seconds = run_flops(run) / throughput.flops_per_s
    if run.precision == "fp32":
        seconds *= RUN_GLUE_ANCHOR.seconds["fp32"] / RUN_GLUE_ANCHOR.seconds["fp16"]
    return seconds / 3600


def notebook_path(chapter: int) -> Path:
    """The chapter's notebook, `notebooks/NN_*.ipynb`."""
    found = sorted(NOTEBOOKS.glob(f"{chapter:02d}_*.ipynb"))
    if not found:
        raise ValueError(f"no notebook for chapter {chapter} in {NOTEBOOKS}")
    return found[0]


def gpu_parameters(chapter: int) -> dict[str, Any]:
    """The chapter's gpu-profile settings: its notebook's `parameters` cell, run with the gpu
    profile in a throwaway namespace (its banner silenced)."""
    cells = json.loads(notebook_path(chapter).read_text(encoding="utf-8"))["cells"]
    (cell,) = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    namespace: dict[str, Any] = {}
    gpu = {k: v for k, v in os.environ.items() if k != TINY_ENV} | {PROFILE_ENV: "gpu"}
    with mock.patch.dict(os.environ, gpu, clear=True), contextlib.redirect_stdout(io.StringIO()):
        exec("".join(cell["source"]), namespace)  # noqa: S102 - the book's own notebook
    return namespace  # the caller's environment is back


def _run(task: str, name: str, options: Mapping[str, Any], model: str, **common: Any) -> Run:
    """The run of a chapter's recipe `name` (its `RunArguments` options) over the chapter's
    `common` settings; a method option that neither sets takes the library's default."""
    o = {f.name: f.default for f in fields(RunArguments)} | common | options
    method = o["method"]
    return Run(task, method, model, o["epochs"], o["batch_size"], label=name,
               trainable_layers=o["trainable_layers"] if method == FREEZE else 0,
               rank=o["r"] if method == "lora" else 0,
               extra_tokens=o["num_virtual_tokens"] if method == "prompt-tuning" else 0,
               eval_every_steps=o["eval_every_steps"] or 0, repeats=o.get("repeats", 1))


def chapter_runs(chapter: int, **overrides: Any) -> list[Run]:
    """The gpu-profile runs of `chapter`, built from its parameters cell; `overrides` replace
    settings of that cell first (`chapter_runs(2, TASK="mnli")`)."""
    p = gpu_parameters(chapter) | overrides
    if chapter == 1:
        return [Run("snli", FULL, p["PRETRAINED"], p["NUM_EPOCHS"], p["BATCH_SIZE"],
                    label=f"full, d2l {p['PRETRAINED']}", eval_splits=(p["EVAL_SPLIT"],),
                    precision="fp32")]
    if chapter == 2:
        space = p["SEARCH_SPACE"]
        epochs = sum(space.num_train_epochs) / 2   # a search samples from the range
        batches = space.per_device_train_batch_size
        batch = len(batches) / sum(1 / b for b in batches)   # the mean number of steps
        common = dict(task=p["TASK"], method=FULL, model=p["MODEL"])
        return [Run(**common, epochs=p["EPOCHS"], batch_size=p["BATCH_SIZE"], label="recipe"),
                Run(**common, epochs=epochs, batch_size=batch, repeats=p["N_TRIALS"],
                    label=f"search, {p['N_TRIALS']} trials", eval_cap=p["SEARCH_EVAL_SAMPLES"],
                    train_fraction=p["SEARCH_FRACTION"], writes_record=False),
                Run(**common, epochs=epochs, batch_size=batch, label="best values")]
    if chapter == 3:
        return [_run(p["TASK"], name, r, p["MODEL"], eval_every_steps=p["EVAL_EVERY_STEPS"])
                for name, r in p["RECIPES"].items()]
    if chapter == 4:
        recipes = {**{m: dict(method=m) for m in p["METHODS"]}, **p["BASELINE"]}
        return [_run(p["TASK"], name, r, p["MODEL"], epochs=p["EPOCHS"],
                     batch_size=p["BATCH_SIZE"], num_virtual_tokens=p["NUM_VIRTUAL_TOKENS"],
                     eval_every_steps=p["EVAL_EVERY_STEPS"]) for name, r in recipes.items()]
    if chapter == 5:
        return [_run(task, name, r, p["MODEL"], epochs=p["TASK_EPOCHS"].get(task, p["EPOCHS"]),
                     batch_size=p["COMMON"]["batch_size"], eval_every_steps=p["EVAL_EVERY_STEPS"])
                for task in p["TASKS"] for name, r in p["RECIPES"].items()]
    if chapter == 6:
        return [_run(task, name, {"method": name, **p["METHOD_OPTIONS"].get(name, {})},
                     p["MODEL"], epochs=p["EPOCHS"][task], batch_size=p["BUDGET"]["batch_size"],
                     eval_every_steps=p["EVAL_EVERY_STEPS"].get(task, 0), repeats=len(p["SEEDS"]))
                for task in p["TASKS"] for name in p["METHODS"]]
    raise ValueError(f"no chapter {chapter}; chapters: 1-6")


def format_hours(hours: float) -> str:
    """'<1 min', '42 min' or '3.4 h'."""
    if hours < 1 / 60:
        return "<1 min"
    return f"{hours * 60:.0f} min" if hours < 1 else f"{hours:.1f} h"


def estimate_text(chapter: int, throughput: Throughput | None = None) -> str:
    """The T4 estimate of the chapter's gpu-profile runs in one line (its header prints it; the
    Time budget page shows how it is made)."""
    throughput = throughput or t4_throughput(load_gpu_check())
    hours = sum(run_hours(r, throughput) for r in chapter_runs(chapter))
    fit = (f"; more than one {SESSION_HOURS:g}-hour session: checkpoint and resume"
           if hours > SESSION_HOURS else "")
    return (f"Chapter {chapter}, gpu profile on a Colab T4: ESTIMATED about "
            f"{format_hours(hours)}{fit} (not a timing; see the Time budget page).")


def measured_time_text(chapter: int) -> str:
    """The chapter's cpu-profile time as measured by the book's own run of the notebook
    (`tools/run_chapters.py`, kept in results/records/chNN/chapter.json), in one line."""
    minutes = chapter_time_minutes(chapter)
    if minutes is None:
        return (f"Chapter {chapter}, cpu profile: no measured run in results/records yet "
                f"({MAKE_RECORDS} --chapters {chapter}).")
    manifest = chapter_manifest(chapter) or {}
    machine = manifest.get("hardware", {})
    where = (f" on {machine.get('cpu', 'a CPU')} ({machine.get('cores', '?')} cores)"
             if machine else "")
    text = (f"Chapter {chapter}, cpu profile (D2L_PROFILE=cpu): MEASURED {minutes:.0f} min"
            f"{where}, the book's own run of this notebook (results/records/ch{chapter:02d}).")
    if manifest.get("stopped"):  # a partial run: the time is the sum of the runs that finished
        text += (f" That run was partial ({len(manifest.get('records', []))} runs; "
                 f"{manifest['stopped'].split(';')[0]}); the time is the sum of its runs.")
    return text


def chapter_time(chapter: int) -> None:
    """Print the chapter's measured cpu-profile time and the T4 estimate of its gpu run (the
    chapters' header cell calls this; `tools/run_chapters.py` puts the same text, read after its
    run was recorded, into the executed copy)."""
    print(f"{measured_time_text(chapter)}\n{estimate_text(chapter)}")
