"""Produce the real-run records the chapters and the book show, and keep them in results/records.

Each run is the library's own CLI command (recorded verbatim in its record.json, with the device,
library versions and data it used). What can run here without a GPU or the model hub: the
pretrained MiniLM-L6 BERT (pip package, offline) on the real SST-2, CoLA and STS-B files.

    python tools/real_runs.py --data-dir ../shared/data/glue                  # every group
    python tools/real_runs.py --data-dir ../shared/data/glue --group ranks    # one group
    python tools/real_runs.py --list                                          # what would run
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RECORDS = ROOT / "results" / "records"
MODEL = "minilm-l6"
# The same budget for every method, so the comparison is fair: a seeded 4,000-example subset of
# train, one epoch, batch 16, the full dev set, evaluated every 50 steps for the curves.
COMMON = ["--model", MODEL, "--max-train-samples", "4000", "--epochs", "1", "--batch-size", "16",
          "--eval-every-steps", "50", "--log-every", "10", "--seed", "42", "--no-save-model",
          "--no-progress"]
TASKS = ("sst2", "cola", "stsb")
METHODS = ("full", "freeze", "bitfit", "lora", "prefix", "ptuning-v2", "prompt-tuning")


def planned_runs() -> dict[str, list[tuple[str, list[str]]]]:
    """group -> [(record name, extra CLI options)]."""
    compare = [(f"{task}-{method}-{MODEL}", ["--task", task, "--method", method])
               for task in TASKS for method in METHODS]
    ranks = [(f"{task}-lora-r{r}-{MODEL}", ["--task", task, "--method", "lora", "--r", str(r)])
             for task in ("cola", "stsb") for r in (2, 64, 256)]
    return {"compare": compare, "ranks": ranks}


def run_one(name: str, options: list[str], data_dir: str, force: bool) -> None:
    target = RECORDS / f"{name}.json"
    if target.exists() and not force:
        print(f"[skip] {name}: {target.relative_to(ROOT)} exists (--force to redo)", flush=True)
        return
    output_dir = ROOT / "runs" / "real" / name
    if output_dir.exists():
        shutil.rmtree(output_dir)
    command = [sys.executable, "-m", "d2l_utils", "train", *options, *COMMON,
               "--data-dir", data_dir, "--output-dir", str(output_dir.relative_to(ROOT))]
    print(f"[run] {name}: {' '.join(command[1:])}", flush=True)
    started = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT)
    RECORDS.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(output_dir / "record.json", target)
    print(f"[done] {name} in {time.perf_counter() - started:.0f} s -> "
          f"{target.relative_to(ROOT)}", flush=True)


def summary() -> str:
    """A markdown table of the committed records (for results/README.md)."""
    sys.path.insert(0, str(ROOT))
    from d2l_utils.pages.plots import records_table
    from d2l_utils.pages.records import committed_records

    records = committed_records()
    table = records_table(records)
    lines = ["| record | task | method | dev metric | trainable | wall s | train ex/s | peak MB |",
             "|---|---|---|---|---:|---:|---:|---:|"]
    for record, (_, row) in zip(records, table.iterrows()):
        lines.append(f"| `{record['record_file']}` | {row['task']} | {row['method']} | "
                     f"{row['metric']} {row['value']:.4f} | {row['trainable']:,} | "
                     f"{row['wall time s']:.0f} | {row['train ex/s']} | {row['peak MB']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", help="folder in the official GLUE layout")
    parser.add_argument("--group", choices=list(planned_runs()), action="append")
    parser.add_argument("--only", help="run only record names containing this text")
    parser.add_argument("--force", action="store_true", help="redo runs whose record exists")
    parser.add_argument("--list", action="store_true", help="print the plan and stop")
    parser.add_argument("--summary", action="store_true",
                        help="print a markdown table of the committed records and stop")
    args = parser.parse_args(argv)
    if args.summary:
        print(summary())
        return 0
    plan = planned_runs()
    for group in args.group or list(plan):
        for name, options in plan[group]:
            if args.only and args.only not in name:
                continue
            if args.list:
                print(f"{group}: {name}: {' '.join(options)}")
                continue
            if not args.data_dir:
                parser.error("--data-dir is required (a folder with SST-2/, CoLA/, STS-B/)")
            run_one(name, options, args.data_dir, args.force)
    return 0


if __name__ == "__main__":
    sys.exit(main())
