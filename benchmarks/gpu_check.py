"""One command that checks a GPU: throughput, MFU, precision, memory, chapter 5 and a resume.

    python benchmarks/gpu_check.py --prepare                # beforehand, with network: olah
    python benchmarks/gpu_check.py [--data-dir GLUE_DIR]    # on the GPU: writes benchmarks/gpu/
    python benchmarks/gpu_check.py --out /tmp/gpu_check     # no GPU: the same code, tiny, on CPU

Four parts, in at most `--budget-s` (480) seconds in all; a part that no longer fits is skipped
and says so, and the files are rewritten after every part, so a run cut short keeps what it had:

1. `bench`: the four ways of `benchmarks/bench.py` (fixed padding, the Trainer's defaults, the
   Trainer as an expert sets it, the library loop) on bert-base-uncased with random weights from
   the shipped config, on SST-2 (full, LoRA, freezing) and STS-B (full, LoRA): examples/s, real
   tokens/s, peak memory and MFU against the datasheet peak and the measured matmul peak, with
   each method's FLOPs per token (6N full, 4N with a frozen backbone, (2 + 4T/L)N freezing).
2. `precision`: the library loop and the expert Trainer on SST-2 (full) in fp32, fp16 and bf16,
   where this GPU computes them natively, and the precision the library picks here.
3. `chapter`: chapter 5's notebook, unmodified, in its gpu profile with the rehearsal caps, in a
   fresh kernel on this GPU, against the local hub mirror (tests/test_rehearsal.py's harness,
   tools/hub_mirror.py served by olah from $D2L_OLAH_VENV, which `--prepare` installs; no
   network then). Skipped, with the reason, when olah is not installed.
4. `resume`: a run killed with SIGKILL mid-run and resumed, against the same run uninterrupted:
   the largest metric and weight differences.

Without a GPU the same parts run on the CPU with tiny settings (tiny-bert, a few steps, chapter 5
in its tiny profile) into `--out`, which must then not be benchmarks/gpu/: the committed GPU
files are never overwritten by a CPU run. Writes `gpu_check.json` and `SUMMARY.md` (format:
benchmarks/GPU_CHECK.md); the book reads the JSON with `d2l_utils.flops.load_gpu_check`.
Exit code 0 when no part failed, 1 when one did, 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "tests", ROOT):  # benchmarks.bench, tools.hub_mirror, tests/'s harness
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

DEFAULT_OUT = ROOT / "benchmarks" / "gpu"
CHAPTER5 = ROOT / "notebooks" / "05_cola_stsb_bitfit_lora.ipynb"
PARTS = ("bench", "precision", "resume", "chapter")  # in the order they run
PRECISION_WAYS = ("library_loop", "hf_trainer_grouped")
RESUME_TASK, RESUME_METHOD = "sst2", "lora"


@dataclass(frozen=True)
class Plan:
    """What one mode runs: the real settings on a GPU, tiny ones on a CPU."""

    model: str
    batch_size: int
    steps: int
    untimed_steps: int
    max_seq_length: int
    train_samples: int | None  # a seeded subset of a real train split: less to tokenize
    benches: tuple[tuple[str, str], ...]  # (task, method)
    precision_job: tuple[str, str]
    matmul_size: int
    matmul_repeats: int
    resume_batch_size: int
    resume_steps: int
    resume_save_every: int
    resume_kill_at: int
    chapter_profile: str  # "gpu": against the hub mirror; "tiny": the fixtures
    part_seconds: dict[str, float]  # about what each part needs: skipped when less is left


GPU_PLAN = Plan(
    model="bert-base-uncased", batch_size=32, steps=30, untimed_steps=3, max_seq_length=128,
    train_samples=8192,
    benches=(("sst2", "full"), ("sst2", "lora"), ("sst2", "freeze"), ("stsb", "full"),
             ("stsb", "lora")),
    precision_job=("sst2", "full"), matmul_size=8192, matmul_repeats=20,
    resume_batch_size=16, resume_steps=30, resume_save_every=10, resume_kill_at=17,
    chapter_profile="gpu",
    part_seconds={"bench": 20, "precision": 30, "resume": 60, "chapter": 120})
CPU_PLAN = Plan(
    model="tiny-bert", batch_size=4, steps=3, untimed_steps=1, max_seq_length=64,
    train_samples=None,
    benches=(("sst2", "full"), ("stsb", "lora")),
    precision_job=("sst2", "full"), matmul_size=256, matmul_repeats=5,
    resume_batch_size=8, resume_steps=10, resume_save_every=4, resume_kill_at=6,
    chapter_profile="tiny",
    part_seconds={"bench": 5, "precision": 5, "resume": 15, "chapter": 20})


class CheckError(Exception):
    """A part found something wrong (its message goes into the JSON and the summary)."""


class Budget:
    """The seconds left of `--budget-s`, counted from the start of the command."""

    def __init__(self, seconds: float, started: float):
        self.seconds, self.started = seconds, started

    def left(self) -> float:
        return self.seconds - (time.perf_counter() - self.started)


# ---------------------------------------------------------------------------------------------
# Options


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The command line; a bad value exits 2 with one `error:` line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", help=f"folder for gpu_check.json and SUMMARY.md (default "
                        f"{DEFAULT_OUT.relative_to(ROOT)}/; a CPU run needs another one)")
    parser.add_argument("--data-dir", help="a GLUE-layout folder with SST-2/ and STS-B/ "
                        "(default: the library's fixtures)")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="seconds for the whole check (480)")
    parser.add_argument("--skip", nargs="+", default=[], choices=PARTS, metavar="PART",
                        help=f"parts not to run: {', '.join(PARTS)}")
    parser.add_argument("--prepare", action="store_true", help="install olah into "
                        "$D2L_OLAH_VENV (needs the network) and exit: do this before the GPU run")
    args = parser.parse_args(argv)
    if not args.budget_s > 0:
        fail(f"--budget-s must be > 0, got {args.budget_s}")
    if args.data_dir is not None:
        folder = Path(args.data_dir)
        missing = [name for name in ("SST-2", "STS-B") if not (folder / name).is_dir()]
        if missing:
            fail(f"--data-dir {folder}: no {' or '.join(f'{m}/' for m in missing)} folder in it "
                 "(it must be in the GLUE layout)")
    return args


def fail(message: str) -> None:
    """Print one `error:` line and exit with code 2."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def output_folder(out: str | None, on_gpu: bool) -> Path:
    """`--out`, or benchmarks/gpu/ on a GPU; a CPU run may not write into benchmarks/gpu/."""
    folder = Path(out).resolve() if out else DEFAULT_OUT
    if not on_gpu and folder.is_relative_to(DEFAULT_OUT):
        fail(f"this machine has no GPU, and {DEFAULT_OUT.relative_to(ROOT)}/ holds the committed "
             "GPU results: give a CPU run another folder with --out DIR")
    return folder


def prepare() -> int:
    """Install olah into its venv (the one download the chapter part needs), then exit."""
    from hub_mirror_fixture import olah_venv

    from tools.hub_mirror import MirrorError, olah_command

    venv = olah_venv()
    with tempfile.TemporaryDirectory(prefix="gpu_check_prepare_") as tmp:
        try:
            olah_command(Path(tmp), venv)
        except MirrorError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    print(f"olah is installed in {venv}; the chapter part needs no network now")
    return 0


# ---------------------------------------------------------------------------------------------
# Parts 1 and 2: throughput, MFU and precision (benchmarks/bench.py)


def flops_per_param(model: str, method: str, trainable_layers: int) -> float:
    """Training FLOPs per real token and parameter for `method` (6 full, 4 with a frozen
    backbone, 2 + 4T/L when the last T of L layers train): the time budget's own factor."""
    from d2l_utils.flops import k_factor, load_backbone

    return k_factor(method, load_backbone(model).layers, trainable_layers)


def bench_arguments(plan: Plan, data_dir: Path, task: str, method: str, **extra: Any):
    """The `BenchArguments` of one job of this plan."""
    from benchmarks.bench import BenchArguments

    return BenchArguments(task=task, method=method, model=plan.model, random_init=True,
                          data_dir=str(data_dir), batch_size=plan.batch_size, steps=plan.steps,
                          untimed_steps=plan.untimed_steps,
                          max_seq_length=plan.max_seq_length,
                          max_train_samples=plan.train_samples, **extra)


def add_mfu(ways: dict[str, dict], params: int, factor: float, peaks: dict[str, Any]) -> None:
    """MFU of every way with the method's FLOPs: against the measured matmul peak (`mfu`) and
    the datasheet peak (`mfu_datasheet`), where each is known."""
    from benchmarks.bench import add_flop_utilization

    add_flop_utilization(ways, params, peaks["measured"], factor, key="mfu")
    add_flop_utilization(ways, params, peaks["datasheet"], factor, key="mfu_datasheet")


def measure_peaks(plan: Plan, device, precisions: list[str], picked: str) -> dict[str, Any]:
    """The datasheet peak and the matmul FLOP/s of every supported precision; MFU is taken
    against the one the library trains in here (`picked`)."""
    from benchmarks.bench import PRECISION_DTYPES, datasheet_peak_flops, matmul_flops

    measured = {p: matmul_flops(device, PRECISION_DTYPES[p], plan.matmul_size,
                                plan.matmul_repeats) for p in precisions}
    return {"datasheet": datasheet_peak_flops(device), "measured": measured[picked],
            "measured_precision": picked, "matmul": measured,
            "matmul_size": plan.matmul_size, "matmul_repeats": plan.matmul_repeats}


def bench_part(plan: Plan, data_dir: Path, peaks: dict[str, Any], budget: Budget,
               result: dict[str, Any], save: Callable[[], None]) -> None:
    """Part 1: the four ways for every (task, method) of the plan, as long as time allows."""
    from benchmarks.bench import WAYS, bench, format_table

    result["bench"] = entries = []
    for task, method in plan.benches:
        if budget.left() < plan.part_seconds["bench"]:
            raise CheckError(f"time budget: {task}/{method} and later jobs not run")
        # the measured peak, so bench does not measure it again (its `mfu` is replaced below)
        args = bench_arguments(plan, data_dir, task, method,
                               peak_tflops=peaks["measured"] / 1e12)
        report = bench(args)
        for key in ("command", "versions", "finished_at", "peak_flops", "peak_flops_datasheet"):
            report.pop(key, None)
        factor = flops_per_param(plan.model, method, args.trainable_layers)
        report["flops_per_param"] = factor
        add_mfu({name: report[name] for name in WAYS}, report["params"]["total"], factor, peaks)
        entries.append(report)
        print(format_table({**report, "peak_flops": None}), flush=True)
        save()


def precision_part(plan: Plan, data_dir: Path, peaks: dict[str, Any], precisions: list[str],
                   budget: Budget, result: dict[str, Any], save: Callable[[], None]) -> None:
    """Part 2: the library loop and the expert Trainer on one job in every supported
    precision, on the same tokenized data."""
    from benchmarks.bench import measure_way, prepare_bench

    task, method = plan.precision_job
    args = bench_arguments(plan, data_dir, task, method)
    run, params, device = prepare_bench(args)
    factor = flops_per_param(plan.model, method, args.trainable_layers)
    result["precision"]["job"] = {"task": task, "method": method, "flops_per_param": factor,
                                  "params": params["total"]}
    result["precision"]["runs"] = rows = []
    for precision in precisions:
        if budget.left() < plan.part_seconds["precision"] / len(precisions):
            raise CheckError(f"time budget: {precision} and later precisions not run")
        job = dataclasses.replace(run, args=dataclasses.replace(run.args,
                                                                mixed_precision=precision))
        ways = {way: measure_way(way, job, args, device) for way in PRECISION_WAYS}
        add_mfu(ways, params["total"], factor, peaks)
        rows += [{"precision": precision, "way": way, **ways[way]} for way in PRECISION_WAYS]
        save()
    fp32 = {row["way"]: row["examples_per_s"] for row in rows if row["precision"] == "no"}
    for row in rows:
        if row["way"] in fp32:
            row["speedup_vs_fp32"] = round(row["examples_per_s"] / fp32[row["way"]], 4)


# ---------------------------------------------------------------------------------------------
# Part 3: chapter 5 in a fresh kernel (the rehearsal's harness)


def chapter_part(plan: Plan, work: Path, budget: Budget, result: dict[str, Any]) -> None:
    """Part 3: chapter 5, unmodified, with the rehearsal caps: its gpu profile against the hub
    mirror (GPU), or its tiny profile on the fixtures (CPU)."""
    import test_rehearsal as rehearsal

    folder = work / "ch05"
    folder.mkdir()
    rehearsal.CELL_TIMEOUT_S = max(30, int(budget.left()))  # read by execute_chapter
    chapter = result["chapter"]
    chapter.update(notebook=str(CHAPTER5.relative_to(ROOT)), profile=plan.chapter_profile,
                   caps={k: int(v) for k, v in rehearsal.CAPS.items()})
    if plan.chapter_profile == "tiny":
        run_chapter(rehearsal, folder, tiny_kernel_env(rehearsal, folder), chapter,
                    expected=None)
        return
    from hub_mirror_fixture import olah_venv, served_mirror

    venv = olah_venv()
    if not (venv / "olah-installed").exists():
        raise SkipPart(f"olah is not installed in {venv} (D2L_OLAH_VENV): run `python "
                       "benchmarks/gpu_check.py --prepare` beforehand, with network")
    started = time.perf_counter()
    with served_mirror(work) as mirror:
        chapter["mirror_seconds"] = round(time.perf_counter() - started, 1)
        sha1 = mirror.manifest["assets"]["files"]["bert.small.torch.zip"]
        env = rehearsal.kernel_env(mirror.endpoint, mirror.asset_url, sha1, folder)
        run_chapter(rehearsal, folder, env, chapter, expected=rehearsal.EXPECTED["05"])


def tiny_kernel_env(rehearsal: Any, folder: Path) -> dict[str, str]:
    """The rehearsal's kernel environment (caps, own caches and output folder), in the tiny
    profile and offline instead of against a mirror."""
    env = rehearsal.kernel_env("", "", "", folder)
    for name in ("HF_ENDPOINT", "D2L_ASSET_URL", "D2L_ASSET_SHA1"):
        env.pop(name)
    env.update(D2L_PROFILE="tiny", HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    return env


def run_chapter(rehearsal: Any, folder: Path, env: dict[str, str], chapter: dict[str, Any],
                expected: tuple[str, int, set[str]] | None, notebook: Path = CHAPTER5) -> None:
    """Execute `notebook` (chapter 5) in `folder` with `env`; note its time and what its
    records say, and check them against `expected` (model, record count, tasks) when given."""
    started = time.perf_counter()
    timings: list[tuple[int, float]] = []
    try:
        _, timings = rehearsal.execute_chapter(notebook, folder, env)
    finally:
        chapter["seconds"] = round(time.perf_counter() - started, 1)
        records = rehearsal.records_of(folder)
        chapter["records"] = [chapter_run(record) for record in records]
    chapter["slowest_cells"] = sorted(timings, key=lambda t: -t[1])[:3]
    check_chapter_records(records, expected)


def check_chapter_records(records: list[dict[str, Any]],
                          expected: tuple[str, int, set[str]] | None) -> None:
    """At least one record; with `expected` (the rehearsal's model, record count and tasks of
    chapter 5), exactly those, every run trained on the GPU."""
    if not records:
        raise CheckError("chapter 5 wrote no run record")
    if expected is None:
        return
    model, count, tasks = expected
    found = sorted({(r["model"], r["task"]) for r in records})
    if len(records) != count or {m for m, _ in found} != {model} or {t for _, t in found} != tasks:
        raise CheckError(f"expected {count} records of {model} on {sorted(tasks)}, found "
                         f"{len(records)}: {found}")
    on_cpu = [r["args"]["output_dir"] for r in records if r["device"].startswith("CPU")]
    if on_cpu:
        raise CheckError(f"{len(on_cpu)} runs trained on the CPU, not the GPU: {on_cpu}")


def chapter_run(record: dict[str, Any]) -> dict[str, Any]:
    """What the summary shows of one record that chapter 5 wrote."""
    main = record.get("main_metric") or {}
    return {"task": record["task"], "method": record["method"], "model": record["model"],
            "profile": record["profile"], "device": record["device"],
            "mixed_precision": record.get("mixed_precision"), "steps": record["steps"],
            "train_time_s": record.get("train_time_s"),
            "peak_memory_mb": record.get("peak_memory_mb"), "caps": record.get("caps"),
            "metric": main.get("name"), "value": main.get("value")}


# ---------------------------------------------------------------------------------------------
# Part 4: kill -9 and resume


def train_command(plan: Plan, data_dir: Path, output_dir: Path) -> list[str]:
    """The run that part 4 kills and resumes (and runs once uninterrupted)."""
    return [sys.executable, "-m", "d2l_utils", "train", "--task", RESUME_TASK,
            "--method", RESUME_METHOD, "--model", plan.model, "--random-init",
            "--data-dir", str(data_dir), "--batch-size", str(plan.resume_batch_size),
            "--max-steps", str(plan.resume_steps), "--max-eval-samples", "256",
            *(["--max-train-samples", str(plan.train_samples)] if plan.train_samples else []),
            "--save-every-steps", str(plan.resume_save_every), "--keep-checkpoints", "2",
            "--no-progress", "--output-dir", str(output_dir)]


def run_env(pause_at: int | None = None) -> dict[str, str]:
    """This environment, offline (nothing part 4 trains comes from the hub), with the pause
    hook at `pause_at` (the step after which the run waits to be killed)."""
    from d2l_utils.profiles import PAUSE_ENV

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
           "TOKENIZERS_PARALLELISM": "false"}
    env.pop(PAUSE_ENV, None)
    if pause_at is not None:
        env[PAUSE_ENV] = str(pause_at)
    return env


def run_to_end(command: list[str], log: Path, timeout: float) -> None:
    """Run `command` in the repository to its end; a failure raises with the log's tail."""
    with open(log, "w") as out:
        code = subprocess.run(command, cwd=ROOT, env=run_env(), stdout=out,
                              stderr=subprocess.STDOUT, timeout=timeout).returncode
    if code != 0:
        raise CheckError(f"{' '.join(command[1:5])} ... exited {code}: "
                         f"{log.read_text(errors='replace')[-1500:]}")


def start_paused(command: list[str], step: int, log: Path) -> subprocess.Popen:
    """Start `command` with the pause hook: after `step` steps it prints a marker and waits."""
    with open(log, "w") as err:
        return subprocess.Popen(command, cwd=ROOT, env=run_env(step), stdout=subprocess.PIPE,
                                stderr=err, text=True)


def kill_when_paused(proc: subprocess.Popen, step: int, log: Path, timeout: float) -> None:
    """Wait until `proc` (from `start_paused`) has finished `step` steps; kill it (SIGKILL)."""
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:  # type: ignore[union-attr]
            if line.strip() == f"paused at step {step}":
                proc.send_signal(signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                raise CheckError(f"the run did not reach step {step} in {timeout:.0f} s")
        else:
            raise CheckError(f"the run ended before step {step}: "
                             f"{log.read_text(errors='replace')[-1500:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def numbers(value: Any, prefix: str = "") -> dict[str, float]:
    """Every number in nested dicts and lists, by its path (`validation.accuracy`)."""
    if isinstance(value, bool):
        return {}
    if isinstance(value, (int, float)):
        return {prefix: float(value)}
    items = (value.items() if isinstance(value, dict)
             else enumerate(value) if isinstance(value, list) else ())
    found: dict[str, float] = {}
    for key, item in items:
        found.update(numbers(item, f"{prefix}.{key}" if prefix else str(key)))
    return found


def largest_difference(a: dict[str, float], b: dict[str, float]) -> tuple[float, str | None]:
    """The largest absolute difference between two path -> number maps, and its path."""
    if a.keys() != b.keys():
        raise CheckError(f"the runs report different values: {sorted(a.keys() ^ b.keys())}")
    if not a:
        return 0.0, None
    path = max(a, key=lambda k: abs(a[k] - b[k]))
    return abs(a[path] - b[path]), path


def weight_difference(a: Path, b: Path) -> float:
    """The largest absolute difference between the trainable weights two runs saved."""
    from safetensors.torch import load_file

    wa, wb = (load_file(str(p / "trainable_weights.safetensors")) for p in (a, b))
    if wa.keys() != wb.keys():
        raise CheckError("the two runs saved different trainable tensors")
    return max(((wa[k].float() - wb[k].float()).abs().max().item() for k in wa), default=0.0)


def resume_part(plan: Plan, data_dir: Path, work: Path, on_gpu: bool, budget: Budget,
                result: dict[str, Any]) -> None:
    """Part 4: kill -9 a run after step `resume_kill_at`, resume it, and compare its metrics
    (final and per evaluation) and weights with the same run uninterrupted. On a CPU they must
    be equal to the bit (the README's promise); on a GPU the differences are the finding."""
    whole, killed = work / "uninterrupted", work / "killed"
    resume = result["resume"]
    resume.update(task=RESUME_TASK, method=RESUME_METHOD, model=plan.model,
                  steps=plan.resume_steps, save_every_steps=plan.resume_save_every,
                  killed_after_step=plan.resume_kill_at,
                  command=" ".join(["python", *train_command(plan, data_dir, killed)[1:]]))
    # the run to kill starts first and waits at its step while the uninterrupted one runs
    proc = start_paused(train_command(plan, data_dir, killed), plan.resume_kill_at,
                        work / "killed.log")
    try:
        run_to_end(train_command(plan, data_dir, whole), work / "uninterrupted.log",
                   max(30.0, budget.left()))
    finally:
        kill_when_paused(proc, plan.resume_kill_at, work / "killed.log", max(30.0, budget.left()))
    run_to_end([*train_command(plan, data_dir, killed), "--resume"], work / "resumed.log",
               max(30.0, budget.left()))
    a, b = (json.loads((p / "record.json").read_text()) for p in (whole, killed))
    resume["resumed_from"] = b.get("resumed_from")
    if not b.get("resumed_from"):
        raise CheckError("the resumed run did not start from a checkpoint")
    metrics, where = largest_difference(numbers({"metrics": a["metrics"],
                                                 "history": a["history"]}),
                                        numbers({"metrics": b["metrics"],
                                                 "history": b["history"]}))
    resume.update(max_metric_difference=metrics, max_metric_difference_at=where,
                  max_weight_difference=weight_difference(whole, killed),
                  metrics={"uninterrupted": a["metrics"], "resumed": b["metrics"]},
                  mixed_precision=b.get("mixed_precision"))
    if not on_gpu and (metrics or resume["max_weight_difference"]):
        raise CheckError(f"on a CPU the resumed run must equal the uninterrupted one; it "
                         f"differs by {metrics} ({where})")


# ---------------------------------------------------------------------------------------------
# The check


class SkipPart(Exception):
    """A part that cannot run here (the reason goes into the JSON and the summary)."""


def supported_precisions() -> list[str]:
    """fp32 (`no`) and the 16-bit precisions this hardware computes natively."""
    from d2l_utils.precision import PrecisionError, resolve_precision

    supported = []
    for precision in ("no", "fp16", "bf16"):
        with contextlib.suppress(PrecisionError):
            supported.append(resolve_precision(precision))
    return supported


@contextlib.contextmanager
def fixtures_or(data_dir: str | None) -> Iterator[tuple[Path, str]]:
    """The GLUE folder to read, and how the summary names it: `--data-dir`, or the library's
    fixtures written to a temporary folder."""
    if data_dir is not None:
        yield Path(data_dir).resolve(), str(Path(data_dir).resolve())
        return
    from d2l_utils.fixtures import write_fixtures

    with tempfile.TemporaryDirectory(prefix="gpu_check_glue_") as tmp:
        yield write_fixtures(tmp), "fixtures"


def markdown_table(rows: Sequence[dict[str, Any]]) -> str:
    """Rows of equal keys as a markdown table."""
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join(["---"] * len(header)) + " |"]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def summary_markdown(result: dict[str, Any]) -> str:
    """SUMMARY.md: the tables of `benchmarks.gpu_check_tables` as Markdown."""
    from benchmarks.gpu_check_tables import gpu_check_tables

    lines = [f"# GPU check: {result['device_name']}", "",
             f"`{result['command']}`, started {result['started_at']}"
             + (f", finished {result['finished_at']}" if result.get("finished_at") else
                " (not finished)") + ". Format: `benchmarks/GPU_CHECK.md`."]
    for frame in gpu_check_tables(result):
        if frame.empty:
            continue
        rows = [{str(k): str(v) for k, v in row.items()} for row in frame.to_dict("records")]
        lines += ["", f"## {frame.attrs['title']}", "", markdown_table(rows)]
    return "\n".join(lines) + "\n"


def write_outputs(result: dict[str, Any], out: Path) -> None:
    """gpu_check.json and SUMMARY.md, each replaced whole (never half-written)."""
    from d2l_utils.flops import GPU_CHECK_JSON

    out.mkdir(parents=True, exist_ok=True)
    for name, text in ((GPU_CHECK_JSON, json.dumps(result, indent=1) + "\n"),
                       ("SUMMARY.md", summary_markdown(result))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def run_part(name: str, result: dict[str, Any], budget: Budget, plan: Plan,
             skip: list[str], body: Callable[[], None], save: Callable[[], None]) -> None:
    """Run one part, timing it and noting passed / failed / skipped with the reason; a failure
    never stops the parts after it."""
    status = result["parts"][name] = {"status": "skipped", "reason": None, "seconds": 0.0}
    if name in skip:
        status["reason"] = "--skip"
    elif budget.left() < plan.part_seconds[name]:
        status["reason"] = (f"time budget: {budget.left():.0f} s left, the part needs about "
                            f"{plan.part_seconds[name]:.0f} s")
    else:
        print(f"\n== {name} ({budget.left():.0f} s of the budget left)", flush=True)
        started = time.perf_counter()
        try:
            body()
            status["status"] = "passed"
        except SkipPart as err:
            status["reason"] = str(err)
        except Exception as err:  # noqa: BLE001  # one part's failure is a finding, not a stop
            status.update(status="failed", reason=f"{type(err).__name__}: {err}"[-2000:])
            if not isinstance(err, CheckError):
                traceback.print_exc()
        status["seconds"] = round(time.perf_counter() - started, 1)
    print(f"{name}: {status['status']}" + (f" ({status['reason']})" if status["reason"] else ""),
          flush=True)
    save()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.prepare:
        return prepare()
    started = time.perf_counter()
    import torch

    from d2l_utils.precision import NATIVE_BF16, resolve_precision
    from d2l_utils.training.record import (
        command_line,
        device_description,
        library_versions,
        timestamp,
    )

    on_gpu = torch.cuda.is_available()
    out = output_folder(args.out, on_gpu)
    device = torch.device("cuda" if on_gpu else "cpu")
    plan = GPU_PLAN if on_gpu else CPU_PLAN
    budget = Budget(args.budget_s, started)
    precisions, picked = supported_precisions(), resolve_precision("auto")
    capability = ".".join(map(str, torch.cuda.get_device_capability())) if on_gpu else None
    with fixtures_or(args.data_dir) as (data_dir, data_name), \
            tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        work = Path(tmp)
        result: dict[str, Any] = {
            "format": "d2l-gpu-check/1", "device": device.type,
            "device_name": device_description(device), "compute_capability": capability,
            "settings": {"model": plan.model, "random_init": True, "data": data_name,
                         "batch_size": plan.batch_size, "steps": plan.steps,
                         "untimed_steps": plan.untimed_steps,
                         "train_samples": plan.train_samples,
                         "max_seq_length": plan.max_seq_length, "budget_s": args.budget_s},
            "precisions": {"supported": precisions, "picked": picked,
                           "native_bf16_from_capability": ".".join(map(str, NATIVE_BF16))},
            "peaks": measure_peaks(plan, device, precisions, picked),
            "parts": {}, "bench": [], "precision": {}, "chapter": {}, "resume": {},
            "command": command_line(), "versions": library_versions(),
            "started_at": timestamp(), "complete": False}

        def save() -> None:
            result["total_seconds"] = round(time.perf_counter() - started, 1)
            write_outputs(result, out)

        bodies = {
            "bench": lambda: bench_part(plan, data_dir, result["peaks"], budget, result, save),
            "precision": lambda: precision_part(plan, data_dir, result["peaks"], precisions,
                                                budget, result, save),
            "resume": lambda: resume_part(plan, data_dir, work / "resume", on_gpu, budget,
                                          result),
            "chapter": lambda: chapter_part(plan, work / "chapter", budget, result)}
        (work / "resume").mkdir()
        (work / "chapter").mkdir()
        for name in PARTS:
            run_part(name, result, budget, plan, args.skip, bodies[name], save)
        result.update(complete=True, finished_at=timestamp())
        save()
        shutil.rmtree(work, ignore_errors=True)
    failed = [name for name, part in result["parts"].items() if part["status"] == "failed"]
    print(f"\n{out / 'gpu_check.json'} and SUMMARY.md written in "
          f"{result['total_seconds']:.0f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
