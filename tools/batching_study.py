"""Length-grouped batches that cost no accuracy: the measurements behind the sampler's default.

Two parts, both on real GLUE files (official layout, never committed; `--data-dir` defaults to
the tiny fixture files the package ships, `d2l_utils.fixtures`, enough to check the script runs):

    # 1. cheap, no training: padding and mixing of candidate batchings on the tokenized lengths
    python tools/batching_study.py padding --data-dir ../shared/data/glue

    # 2. the acceptance grid: full, LoRA and BitFit (--head train) on STS-B and SST-2, 3 seeds,
    #    grouped (the default sampler) vs random batches (--group-by-length false), run one
    #    after the other with the library's CLI; writes a markdown table and JSON lines
    nohup python tools/batching_study.py grid --data-dir ../shared/data/glue \
        --out benchmarks/batching > batching.log 2>&1 &
    python tools/batching_study.py table --out benchmarks/batching   # the table from the lines

    # a check in seconds that both parts run: the fixtures, the tiny random model, small batches
    python tools/batching_study.py padding --model tiny-bert --batch-size 4 --seeds 1 2
    python tools/batching_study.py grid --model tiny-bert --batch-size 4 --tasks stsb \
        --methods lora --seeds 1 --train-options="--max-steps 2" \
        --out runs/check --runs-dir runs/check/runs

`padding` reports, per candidate: the padding share (padded tokens that are not real tokens),
padded tokens per example relative to random batches (the compute that padding costs), and how
mixed the batches are: the spread (standard deviation over batches) of the batch label means and,
for STS-B, of the batch genre shares, each as a multiple of the same spread for random batches
(1.0 = as mixed as random batches; a batch of 32 drawn from one length stratum has a larger
spread when length correlates with the label or the genre).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MODEL = "minilm-l6"
BATCH = 32
CHECKPOINTS = "checkpoints"  # d2l_utils.training.checkpoints.CHECKPOINT_DIR


# ---------------------------------------------------------------------------------------------
# Part 1: padding and mixing of candidate batchings (no training)


def tokenized(task_name: str, data_dir: str, max_seq_length: int = 128, model: str = MODEL):
    """(lengths, labels, genres or None) of the whole train split, tokenized as a run does."""
    from d2l_utils.backbones import load_config, load_tokenizer, resolve_backbone
    from d2l_utils.data import load_task_data
    from d2l_utils.preprocessing import tokenize_splits
    from d2l_utils.tasks import get_task

    task = get_task(task_name)
    raw = load_task_data(task, data_dir=data_dir)
    backbone = resolve_backbone(model)
    tokenizer = load_tokenizer(backbone, load_config(backbone, task))
    data = tokenize_splits(raw, tokenizer, task, max_seq_length)["train"]
    genres = None
    if task_name == "stsb":  # the genre column is not part of the task schema: read it here
        path = Path(data_dir) / task.glue_dir / "train.tsv"
        with open(path, newline="", encoding="utf-8") as file:
            rows = list(csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE))
        genres = [row["genre"] for row in rows]
        if len(genres) != len(data):
            genres = None
    return list(data["length"]), [float(y) for y in data["labels"]], genres


def candidates(batch: int = BATCH
               ) -> dict[str, Callable[[list[int], list[float], int], Iterable[list[int]]]]:
    """name -> f(lengths, labels, seed) giving one epoch of batches of `batch` examples."""
    from d2l_utils.preprocessing import LengthGroupedBatchSampler

    def sampler(**options):
        return lambda lengths, labels, seed: LengthGroupedBatchSampler(lengths, batch, seed=seed,
                                                                       **options)

    def jitter_sort(spread: float):
        """Sort the whole epoch by length x (1 + uniform noise), cut, shuffle the batches."""
        import torch

        def batches(lengths, labels, seed):
            g = torch.Generator().manual_seed(seed)
            noise = (torch.rand(len(lengths), generator=g) * 2 - 1) * spread
            key = torch.tensor(lengths, dtype=torch.float) * (1 + noise)
            order = torch.argsort(key).tolist()
            cut = [order[i:i + batch] for i in range(0, len(order), batch)]
            return [cut[i] for i in torch.randperm(len(cut), generator=g)]
        return batches

    found = {"random": sampler(group_by_length=False),
             # the default: the sampler chooses the mega-batch size from the labels
             "default (chosen)": lambda lengths, labels, seed: LengthGroupedBatchSampler(
                 lengths, batch, seed=seed, labels=labels)}
    for mega in (50, 20, 10, 5, 4, 3, 2):
        found[f"mega {mega}"] = sampler(mega_batch=mega)
    for spread in (0.25, 0.5):
        found[f"jitter sort ±{spread:.0%}"] = jitter_sort(spread)
    return found


def spread_of_means(batches: list[list[int]], values: list[float], batch: int = BATCH) -> float:
    means = [statistics.fmean(values[i] for i in b) for b in batches if len(b) == batch]
    return statistics.pstdev(means)


def measure(batches: list[list[int]], lengths: list[int], labels: list[float],
            genres: list[str] | None, batch: int = BATCH) -> dict[str, float]:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(max(lengths[i] for i in b) * len(b) for b in batches)
    examples = sum(len(b) for b in batches)
    result = {"padding_share": 1 - real / padded, "padded_per_example": padded / examples,
              "label_spread": spread_of_means(batches, labels, batch)}
    if genres is not None:
        full = [b for b in batches if len(b) == batch]
        result["one_genre_share"] = sum(
            max(sum(genres[i] == g for i in b) for g in set(genres)) >= 0.9 * batch
            for b in full) / len(full)
        for genre in sorted(set(genres)):
            result[f"genre_spread:{genre}"] = spread_of_means(
                batches, [float(g == genre) for g in genres], batch)
    return result


def padding_study(data_dir: str, tasks: list[str], seeds: list[int], model: str = MODEL,
                  batch: int = BATCH) -> list[dict]:
    """Every candidate on every task, averaged over seeds (epochs of the sampler)."""
    rows = []
    for task in tasks:
        lengths, labels, genres = tokenized(task, data_dir, model=model)
        from d2l_utils.preprocessing import choose_mega_batch, length_label_share

        print(f"{task}: {len(lengths)} examples, mean length {statistics.fmean(lengths):.1f}, "
              f"corr(length, label) {statistics.correlation(lengths, labels):+.3f}, length "
              f"explains {length_label_share(lengths, labels):.4f} of the label variance; "
              f"chosen mega-batch at batch {batch}: "
              f"{choose_mega_batch(lengths, labels, batch)}", flush=True)
        measured = {}
        for name, make in candidates(batch).items():
            per_seed = [measure(list(make(lengths, labels, seed)), lengths, labels, genres, batch)
                        for seed in seeds]
            measured[name] = {k: statistics.fmean(m[k] for m in per_seed) for k in per_seed[0]}
        base = measured["random"]
        for name, m in measured.items():
            row = {"task": task, "candidate": name,
                   "padding_share": round(m["padding_share"], 4),
                   "padded_tokens_vs_random": round(m["padded_per_example"]
                                                    / base["padded_per_example"], 4),
                   "label_spread_vs_random": round(m["label_spread"] / base["label_spread"], 3)}
            genre_keys = [k for k in m if k.startswith("genre_spread:")]
            if genre_keys:
                row["genre_spread_vs_random"] = round(max(m[k] / base[k] for k in genre_keys), 3)
                row["one_genre_batches"] = round(m["one_genre_share"], 4)
            rows.append(row)
    return rows


def padding_table(rows: list[dict]) -> str:
    lines = ["| task | batching | padding share | padded tokens vs random | label-mean spread "
             "vs random | genre-share spread vs random (worst genre) | batches >= 90% one "
             "genre |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        genre = f"{r['genre_spread_vs_random']:.2f}" if "genre_spread_vs_random" in r else "–"
        one = f"{r['one_genre_batches']:.1%}" if "one_genre_batches" in r else "–"
        lines.append(f"| {r['task']} | {r['candidate']} | {r['padding_share']:.1%} | "
                     f"{r['padded_tokens_vs_random']:.2f} | {r['label_spread_vs_random']:.2f} | "
                     f"{genre} | {one} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Part 2: the acceptance grid (training runs through the library's CLI)

TASK_SETTINGS = {
    # chapter 6's budget, cut to fit 36 runs into about 80 minutes of two cores: all 5,749
    # STS-B pairs for 1 epoch; a seeded 4,000-sentence SST-2 subset (the subset depends on
    # --seed, as --max-train-samples does), 1 epoch
    "stsb": ["--epochs", "1"],
    "sst2": ["--epochs", "1", "--max-train-samples", "4000"],
}
METHOD_SETTINGS = {
    "full": ["--method", "full"],
    "lora": ["--method", "lora"],
    "bitfit": ["--method", "bitfit", "--head", "train"],
}
BATCHINGS = {"grouped": [], "random": ["--group-by-length", "false"],
             # the previous default (the Trainer's): grouped, mega-batches of 50 batches
             "grouped50": ["--mega-batch", "50"]}


def grid(tasks: list[str], methods: list[str], seeds: list[int],
         extra: dict[str, list[str]], batchings: tuple[str, ...] = ("grouped", "random")
         ) -> list[tuple[str, dict, list[str]]]:
    """(run name, its key, its CLI options) in the order they run: seeds outermost, so a
    partial grid already has every cell with fewer seeds."""
    runs = []
    for seed in seeds:
        for task in tasks:
            for method in methods:
                for batching in batchings:
                    options = BATCHINGS[batching]
                    key = {"task": task, "method": method, "batching": batching, "seed": seed}
                    name = f"{task}-{method}-{batching}-s{seed}"
                    runs.append((name, key, ["--task", task, *METHOD_SETTINGS[method],
                                             *TASK_SETTINGS[task],
                                             *extra.get(f"{task}:{method}", []), *options,
                                             "--seed", str(seed)]))
    return runs


def finished(lines_path: Path) -> set[str]:
    if not lines_path.exists():
        return set()
    return {json.loads(line)["name"] for line in lines_path.read_text().splitlines() if line}


def claim(claims: Path, name: str) -> bool:
    """Take run `name` for this process (several `grid` processes can share the work: on a
    shared CPU, two one-thread processes use the two cores better than one two-thread one).
    A claim whose process is gone is taken over."""
    path = claims / name
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                os.kill(int(path.read_text() or 0), 0)
                return False  # a live process has it
            except (ProcessLookupError, ValueError):
                path.unlink(missing_ok=True)  # stale: its process ended
                continue
            except PermissionError:
                return False
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        return True
    return False


def run_grid(args: argparse.Namespace) -> None:
    out = Path(args.out)
    claims = out / "claims"
    claims.mkdir(parents=True, exist_ok=True)
    lines_path = out / "runs.jsonl"
    extra = {}
    for item in args.extra:
        cell, _, options = item.partition("=")
        extra[cell] = options.split()
    runs = grid(args.tasks, args.methods, args.seeds, extra, tuple(args.batchings))
    # the runs train in ROOT (their working directory): hand them absolute paths
    args.data_dir = str(Path(args.data_dir).resolve())
    args.runs_dir = str(Path(args.runs_dir).resolve())
    for _ in range(2):  # a second pass takes over runs whose claiming process died
        for name, key, options in runs:
            if name in finished(lines_path) or not claim(claims, name):
                continue
            run_one(args, name, key, options, lines_path)
            (claims / name).unlink(missing_ok=True)


def run_one(args: argparse.Namespace, name: str, key: dict, options: list[str],
            lines_path: Path) -> None:
    """Train one run of the grid (or adopt the record.json a finished run left) and append
    its line to `lines_path`."""
    run_dir = Path(args.runs_dir) / name
    started = time.perf_counter()
    if not (run_dir / "record.json").exists():
        # through this script's `train`, which takes --mega-batch (not a library option)
        # resumable: a run killed on the shared machine continues from its last checkpoint
        command = [sys.executable, __file__, "train", *options, "--model", args.model,
                   "--batch-size", str(args.batch_size), "--data-dir", args.data_dir,
                   "--output-dir", str(run_dir), "--resume", "--save-every-steps", "60",
                   "--keep-checkpoints", "1", "--no-save-model", "--no-progress",
                   *args.train_options.split()]
        print(f"[run] {name}: {' '.join(command[2:])}", flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "HF_HUB_OFFLINE": "1",
               "HF_DATASETS_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
        done_run = subprocess.run(command, cwd=ROOT, env=env)
        if done_run.returncode != 0:
            print(f"[fail] {name}: exit {done_run.returncode}", flush=True)
            return
        shutil.rmtree(run_dir / CHECKPOINTS, ignore_errors=True)
    record = json.loads((run_dir / "record.json").read_text())
    line = {"name": name, **key, "options": [*options, *args.train_options.split()],
            "model": args.model, "batch_size": args.batch_size, **summarize(record),
            "wall_s": round(time.perf_counter() - started, 1), "threads": args.threads,
            "load_average_1min": os.getloadavg()[0]}
    with open(lines_path, "a") as file:
        file.write(json.dumps(line) + "\n")
    print(f"[done] {name}: {line['metric']} {line['score']:.4f} in {line['wall_s']:.0f} s",
          flush=True)
    (lines_path.parent / "table.md").write_text(grid_table(read_lines(lines_path)) + "\n")


def summarize(record: dict) -> dict:
    """The main metric on dev and what else the table needs, from a run's record.json."""
    main = record["main_metric"]
    metric, split = main["name"], main["split"]
    return {"metric": metric, "score": main["value"], "lr": record["args"]["lr"],
            "pooler": record["args"].get("pooler"),
            "max_grad_norm": record["args"]["max_grad_norm"],
            "train_loss": [h.get("train_loss") for h in record["history"]],
            "per_epoch": [h[split][metric] for h in record["history"]],
            "train_time_s": record["train_time_s"],
            "examples_per_s": record["train_examples_per_s"],
            "trainable": record["params"]["trainable"]}


def read_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def grid_table(lines: list[dict]) -> str:
    """Mean ± sd over seeds, grouped vs random, per task and method; `yes` when the grouped mean
    is within one seed standard deviation (the larger of the two) of the random mean, and the
    two-sided p of Welch's t-test over the seeds. Runs with
    the old 50-batch mega-batches (`grouped50`), where there are any, get their own columns."""
    cells: dict[tuple, dict[str, list[dict]]] = {}
    for line in lines:
        cells.setdefault((line["task"], line["method"]), {}).setdefault(line["batching"],
                                                                       []).append(line)
    from d2l_utils.stats import welch_p

    old = any("grouped50" in by for by in cells.values())
    out = ["| task | method | metric | grouped (default) | random | grouped − random | "
           "within 1 sd | p, seeds |" + (" mega 50 (old) | mega 50 − random |" if old else "")
           + " seeds | train examples/s grouped / random |",
           "|---|---|---|---:|---:|---:|:---:|---:|" + ("---:|---:|" if old else "") + "---|---:|"]

    def stats(runs: list[dict]) -> tuple[float, float]:
        scores = [r["score"] for r in runs]
        return statistics.fmean(scores), statistics.stdev(scores) if len(scores) > 1 else 0.0

    for (task, method), by in sorted(cells.items()):
        if "grouped" not in by or "random" not in by:
            continue
        (gm, gs), (rm, rs) = stats(by["grouped"]), stats(by["random"])
        ok = "yes" if abs(gm - rm) <= max(gs, rs) else "**no**"
        seeds = sorted({r["seed"] for r in by["grouped"]} & {r["seed"] for r in by["random"]})
        rates = [statistics.fmean(r["examples_per_s"] for r in by[b])
                 for b in ("grouped", "random")]
        p = welch_p([r["score"] for r in by["grouped"]], [r["score"] for r in by["random"]])
        row = (f"| {task} | {method} | {by['grouped'][0]['metric']} | {gm:.3f} ± {gs:.3f} | "
               f"{rm:.3f} ± {rs:.3f} | {gm - rm:+.3f} | {ok} | "
               f"{'–' if p is None else f'{p:.2f}'} |")
        if old:
            if "grouped50" in by:
                om, osd = stats(by["grouped50"])
                row += f" {om:.3f} ± {osd:.3f} (n={len(by['grouped50'])}) | {om - rm:+.3f} |"
            else:
                row += " – | – |"
        out.append(row + f" {','.join(map(str, seeds))} | {rates[0]:.1f} / {rates[1]:.1f} "
                   f"({rates[0] / rates[1]:.2f}x) |")
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------


def fixtures_dir() -> Path:
    """The tiny GLUE files the package ships (official layout): the default --data-dir."""
    from d2l_utils.fixtures import FIXTURES_DIR

    return FIXTURES_DIR


def train(argv: list[str]) -> int:
    """`python -m d2l_utils train ARGS`, with `--mega-batch N` setting the sampler's
    mega-batch size for this run (a study knob, not a library option)."""
    import d2l_utils.preprocessing as preprocessing
    from d2l_utils.cli import main as cli_main

    if "--mega-batch" in argv:
        at = argv.index("--mega-batch")
        size = int(argv[at + 1])
        preprocessing.MEGA_BATCH = size
        preprocessing.choose_mega_batch = lambda *args, **kwargs: size
        argv = argv[:at] + argv[at + 2:]
    return cli_main(["train", *argv])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["train"]:
        return train(argv[1:])
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    pad = sub.add_parser("padding", help="padding and mixing of candidate batchings")
    pad.add_argument("--data-dir", default=str(fixtures_dir()),
                     help="a folder in the GLUE layout (default: the shipped fixtures)")
    pad.add_argument("--model", default=MODEL, help="whose tokenizer (default: %(default)s)")
    pad.add_argument("--batch-size", type=int, default=BATCH)
    pad.add_argument("--tasks", nargs="+", default=["stsb", "sst2"])
    pad.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3, 4, 5])
    pad.add_argument("--json", help="also write the rows as JSON lines here")
    run = sub.add_parser("grid", help="the 3-seed acceptance grid")
    run.add_argument("--data-dir", default=str(fixtures_dir()),
                     help="a folder in the GLUE layout (default: the shipped fixtures)")
    run.add_argument("--model", default=MODEL, help="every run's --model (default: %(default)s)")
    run.add_argument("--batch-size", type=int, default=BATCH)
    run.add_argument("--out", default="benchmarks/batching")
    run.add_argument("--runs-dir", default="runs/batching")
    run.add_argument("--tasks", nargs="+", default=["stsb", "sst2"])
    run.add_argument("--methods", nargs="+", default=list(METHOD_SETTINGS))
    run.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    run.add_argument("--batchings", nargs="+", default=["grouped", "random"],
                     choices=list(BATCHINGS))
    run.add_argument("--threads", type=int, default=1,
                     help="torch threads per run (OMP_NUM_THREADS); 1 is faster on a shared CPU")
    run.add_argument("--extra", nargs="*", default=[],
                     help='extra options of one cell, e.g. "stsb:lora=--pooler train"')
    run.add_argument("--train-options", default="",
                     help='options added to every run, e.g. --train-options="--max-steps 2" '
                          "(note the =: the value starts with a dash)")
    sub.add_parser("train", help="python -m d2l_utils train ... [--mega-batch N]")
    table = sub.add_parser("table", help="the markdown table from the JSON lines")
    table.add_argument("--out", default="benchmarks/batching")
    args = parser.parse_args(argv)
    if args.command == "padding":
        rows = padding_study(args.data_dir, args.tasks, args.seeds, args.model, args.batch_size)
        print(padding_table(rows))
        if args.json:
            with open(args.json, "a") as file:
                for row in rows:
                    file.write(json.dumps(row) + "\n")
    elif args.command == "grid":
        run_grid(args)
    else:
        lines_path = Path(args.out) / "runs.jsonl"
        if not lines_path.exists():
            parser.error(f"no {lines_path}: `grid --out {args.out}` writes it")
        print(grid_table(read_lines(lines_path)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
