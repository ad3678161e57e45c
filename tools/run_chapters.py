"""Run the chapters themselves and keep the run records they write: the book's results.

Each chapter notebook is executed unmodified (nbclient) with `D2L_PROFILE`, `D2L_DATA_DIR` and
`D2L_OUTPUT_DIR` set; afterwards every `record.json` the chapter wrote is copied to
`results/records/chNN/`, each with a `chapter_run` block: the command, the notebook, the data
folder, the hardware, the library versions and the notebook's wall time. A `chapter.json` per
chapter lists its records and its measured time, from which the chapter headers and the Results
page take their numbers. The executed notebook itself is kept, scrubbed, as
`results/executed/NN_name.ipynb` (tools/executed_copies.py): the website renders it.

    python tools/snli_split.py ../shared/data/snli/snli_1.0_dev.txt DATA      # SNLI/ for ch1, ch3
    ln -s ../shared/data/glue/{SST-2,CoLA,STS-B} DATA/                       # GLUE beside it
    nohup python tools/run_chapters.py --profile cpu --data-dir DATA > chapters.log 2>&1 &
    python tools/run_chapters.py --profile cpu --data-dir DATA --chapters 1 3   # some chapters
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import shlex
import shutil
import signal
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

NOTEBOOKS = ROOT / "notebooks"
RESULTS = ROOT / "results" / "records"


def chapter_notebooks() -> dict[int, Path]:
    """Chapter number -> its notebook (`notebooks/NN_*.ipynb`)."""
    return {int(path.name[:2]): path for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))}


def hardware() -> dict:
    """What the runs ran on: CPU model, cores, threads, memory, GPU (if any)."""
    import psutil
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "gpu": gpu,
            "platform": platform.platform(), "python": platform.python_version()}


class Interrupted(Exception):
    """SIGTERM or SIGINT arrived while a chapter ran; its kernel has been killed."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"stopped by {signal.Signals(signum).name}")
        self.signum = signum


def execute(notebook: Path, executed: Path, env: dict[str, str], timeout: int | None) -> float:
    """Run `notebook` top to bottom in a fresh kernel with `env`; save it to `executed`.
    Returns the wall time in seconds. A failing cell raises, naming the cell.

    SIGTERM or SIGINT kills the kernel (and everything it started) at once and raises
    `Interrupted`: nbclient's own handlers ask a busy kernel to shut down politely, which it
    does not hear while a cell trains, so the tool would otherwise wait and its kernel outlive it.
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(notebook, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(NOTEBOOKS)}})
    stopped: list[int] = []

    def kill_kernel(signum: int) -> None:
        stopped.append(signum)
        provisioner = getattr(client.km, "provisioner", None)
        pgid, pid = getattr(provisioner, "pgid", None), getattr(provisioner, "pid", None)
        with contextlib.suppress(ProcessLookupError):
            if pgid:
                os.killpg(pgid, signal.SIGKILL)
            elif pid:
                os.kill(pid, signal.SIGKILL)

    def take_over_signals(**_: object) -> None:  # once the kernel runs, replacing nbclient's
        loop = asyncio.get_event_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, kill_kernel, signum)

    client.on_notebook_start = take_over_signals
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)  # the kernel inherits this process's environment
    start = time.perf_counter()
    try:
        client.execute()
    except Exception as err:
        if stopped:
            raise Interrupted(stopped[0]) from err
        raise
    finally:
        elapsed = time.perf_counter() - start
        executed.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, executed)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return elapsed


def collect(chapter: int, run_dir: Path, provenance: dict) -> list[str]:
    """Copy every record under `run_dir` to results/records/chNN/ with its provenance."""
    target = RESULTS / f"ch{chapter:02d}"
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    names = []
    from d2l_utils.training.record import RECORD_FILE

    for path in sorted(run_dir.rglob(RECORD_FILE)):
        record = json.loads(path.read_text())
        if record.get("caps"):
            continue  # a rehearsal is no result
        parts = list(path.parent.relative_to(run_dir).parts)
        if parts and parts[0] == f"ch{chapter:02d}":  # chapters write under OUTPUT/chNN/
            parts = parts[1:]
        name = "-".join(parts) or f"ch{chapter:02d}"
        record["chapter_run"] = provenance
        (target / f"{name}.json").write_text(json.dumps(record, indent=1) + "\n")
        names.append(name)
    return names


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--profile", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--data-dir", help="folder in the GLUE/SNLI layout (D2L_DATA_DIR); "
                        "default: the hub")
    parser.add_argument("--chapters", nargs="+", type=int, help="default: every chapter")
    parser.add_argument("--output-dir", default="runs/chapters",
                        help="where the chapters' runs and the executed notebooks go")
    parser.add_argument("--timeout", type=int, default=None,
                        help="seconds one cell may take (default: no limit)")
    parser.add_argument("--no-collect", action="store_true",
                        help="run only; leave results/records as it is")
    args = parser.parse_args(argv)

    notebooks = chapter_notebooks()
    chapters = args.chapters or sorted(notebooks)
    unknown = [c for c in chapters if c not in notebooks]
    if unknown:
        parser.error(f"--chapters {unknown}: the chapters are {sorted(notebooks)}")
    if args.data_dir and not Path(args.data_dir).is_dir():
        parser.error(f"--data-dir {args.data_dir}: no such folder")
    if Path(args.output_dir).exists() and not Path(args.output_dir).is_dir():
        parser.error(f"--output-dir {args.output_dir}: a file, not a folder; name a folder")
    if args.timeout is not None and args.timeout <= 0:
        parser.error(f"--timeout {args.timeout}: must be a positive number of seconds")
    capped = [v for v in ("D2L_MAX_STEPS", "D2L_MAX_EVAL_SAMPLES", "D2L_MAX_BATCH_SIZE")
              if os.environ.get(v)]
    if capped and not args.no_collect:
        parser.error(f"{', '.join(capped)} set: a capped run is a rehearsal, not a result; "
                     "unset them or add --no-collect")
    output = Path(args.output_dir).resolve()
    machine = hardware()
    from d2l_utils.training.record import library_versions

    failed: list[int] = []
    for chapter in chapters:
        notebook = notebooks[chapter]
        run_dir = output / f"ch{chapter:02d}"
        if run_dir.exists():
            shutil.rmtree(run_dir)  # a fresh run: no record of an earlier one is picked up
        env = {"D2L_PROFILE": args.profile, "D2L_OUTPUT_DIR": str(run_dir), "D2L_TINY": ""}
        env["D2L_DATA_DIR"] = str(Path(args.data_dir).resolve()) if args.data_dir else ""
        started = datetime.now(timezone.utc).isoformat(timespec="seconds")
        print(f"[{started}] chapter {chapter}: {notebook.name} ({args.profile} profile)",
              flush=True)
        load_before = os.getloadavg()[0]
        try:
            wall = execute(notebook, output / "executed" / notebook.name, env, args.timeout)
        except Interrupted as stop:
            print(f"  chapter {chapter} {stop}: its kernel is killed; nothing more is run or "
                  "collected", flush=True)
            return 128 + stop.signum
        except Exception as err:  # noqa: BLE001 - report the failing cell, go on with the next
            print(f"  chapter {chapter} FAILED ({type(err).__name__}); its executed notebook is "
                  f"in {output / 'executed' / notebook.name}:\n{str(err)[-3000:]}", flush=True)
            failed.append(chapter)
            continue
        provenance = {
            "chapter": chapter, "notebook": f"notebooks/{notebook.name}",
            "command": "python tools/run_chapters.py " + shlex.join(sys.argv[1:] if argv is None
                                                                     else argv),
            "profile": args.profile,
            "data_dir": os.path.basename(os.path.normpath(args.data_dir)) if args.data_dir
            else "hub",
            "snli_split": _snli_split(args.data_dir),
            "hardware": machine, "versions": library_versions(),
            "started": started, "notebook_wall_time_s": round(wall, 1),
            "load_average_1min": {"before": round(load_before, 2),
                                  "after": round(os.getloadavg()[0], 2)},
        }
        print(f"  finished in {wall / 60:.1f} min", flush=True)
        if args.no_collect:
            continue
        names = collect(chapter, run_dir, provenance)
        keep_executed_copy(notebook, output / "executed" / notebook.name, run_dir, provenance)
        summary = {key: provenance[key] for key in ("chapter", "notebook", "command", "profile",
                                                    "data_dir", "started",
                                                    "notebook_wall_time_s")}
        summary["hardware"] = machine
        summary["records"] = names
        (RESULTS / f"ch{chapter:02d}" / "chapter.json").write_text(
            json.dumps(summary, indent=1) + "\n")
        refresh_header(notebook, chapter)  # the page's header: this run's time, now recorded
        print(f"  {len(names)} records -> {(RESULTS / f'ch{chapter:02d}').relative_to(ROOT)}",
              flush=True)
    if failed:
        print(f"failed: chapters {failed}", flush=True)
    return 1 if failed else 0


def _git_commit() -> str:
    """The commit the chapters ran at ("unknown" outside a git checkout)."""
    import subprocess

    result = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True)
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def refresh_header(notebook: Path, chapter: int) -> None:
    """Rewrite the executed copy's header cell with the time just written to chapter.json."""
    import nbformat

    from tools.executed_copies import executed_path, refresh_time_header

    target = executed_path(notebook)
    nb = nbformat.read(target, as_version=4)
    if refresh_time_header(nb, chapter):
        nbformat.write(nb, target)


def keep_executed_copy(notebook: Path, executed: Path, run_dir: Path, provenance: dict) -> Path:
    """Scrub the executed notebook and keep it under results/executed/ with where it ran (the
    models, tasks and precisions are read from the records the chapter wrote)."""
    import nbformat

    from d2l_utils.pages.plots import task_name
    from tools.executed_copies import MAX_BYTES, RUN_KEY, executed_path, scrub

    records = [json.loads(p.read_text()) for p in sorted(run_dir.rglob("record.json"))]
    nb = scrub(nbformat.read(executed, as_version=4),
               {str(run_dir): "runs", str(ROOT): ".",  # chapters write under OUTPUT/chNN
                str(Path.home()): "~"})
    nb.metadata[RUN_KEY] = {
        "profile": provenance["profile"], "commit": _git_commit(),
        "started": provenance["started"], "wall_time_s": provenance["notebook_wall_time_s"],
        "data": provenance["data_dir"], "hardware": provenance["hardware"],
        "models": sorted({r["model"] for r in records}),
        "tasks": sorted({task_name(r["task"]) for r in records}),
        "precision": sorted({r.get("mixed_precision") or "fp32" for r in records}),
        # the mean 1-minute load while it ran: above the core count, other jobs slowed it
        "load_average": round(sum(provenance["load_average_1min"].values()) / 2, 2),
    }
    target = executed_path(notebook)
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, target)
    size = target.stat().st_size
    shown = target.relative_to(ROOT) if target.is_relative_to(ROOT) else target
    if size > MAX_BYTES:
        print(f"  warning: {shown} is {size / 2**20:.1f} MiB (limit "
              f"{MAX_BYTES / 2**20:.0f} MiB): make its plots smaller", flush=True)
    print(f"  executed copy -> {shown} ({size / 2**10:.0f} KiB)", flush=True)
    return target


def _snli_split(data_dir: str | None) -> dict | None:
    """The split.json that tools/snli_split.py left in DATA/SNLI, if any."""
    if not data_dir:
        return None
    path = Path(data_dir) / "SNLI" / "split.json"
    return json.loads(path.read_text()) if path.is_file() else None


if __name__ == "__main__":
    sys.exit(main())
