"""The same training job four ways, timed in one process (a script, not part of the library):

    python benchmarks/bench.py --model M --task T --method X [--data-dir DIR | --tiny] [--steps N]


1. fixed padding: every example padded to `max_seq_length`, fp32, shuffled batches from a plain
   `DataLoader` and a minimal AdamW loop (the seeds' way);
2. hf trainer: `transformers.Trainer` with `DataCollatorWithPadding` and default arguments;
3. hf trainer + group_by_length: the Trainer as an expert configures it (`group_by_length=True`:
   mega-batches of 50 batches; `optim="adamw_torch_fused"`; fp16/bf16 as `--mixed-precision`
   resolves on the GPU, fp32 on a CPU), so ways 2 and 3 show how much of the library loop's
   speed-up over the Trainer's defaults that flag alone gives (`hf_group_by_length_share`);
4. library loop: `train_with_loop` (length-grouped batches, mega-batches of 50 batches or 3
   where length goes with the label; dynamic padding, fused AdamW, fp16/bf16 autocast on a GPU).

Each way starts from the same seeded model and tokenized data, runs a few untimed steps, then
`steps` timed optimizer steps, measured by the same hooks: a forward pre-hook counts examples and
real (attention-mask) tokens, an optimizer-step hook takes the times. Model FLOP utilization
(MFU) counts `flops_per_param` x parameters FLOPs per real token: 6 by convention, or the
method's own factor (`benchmarks/gpu_check.py`: 4 with a frozen backbone, 2 + 4T/L when the last
T of L layers train). The output is a table and, last, one JSON line. Options are `train`'s
(`--help` lists them) and are checked as `train` checks them; the exit codes are the library
commands' (`d2l_utils.cli`: 2 a bad option, in one `error:` line before any data or model loads;
1 a data or model problem). `gpu_check_tables` formats `benchmarks/gpu_check.py`'s results for
the book pages.
"""

from __future__ import annotations

import dataclasses
import functools
import gc
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Literal

import psutil
import torch
import torch.nn as nn
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback

from d2l_utils.arguments import RunArguments, check_against_model
from d2l_utils.flops import datasheet_peak_for
from d2l_utils.methods import build_model, count_parameters
from d2l_utils.methods.base import Bounds, HeadMode, check_options, option
from d2l_utils.precision import hf_precision_kwargs, resolve_precision
from d2l_utils.training.loop import train_with_loop
from d2l_utils.training.prepare import PreparedRun, prepare_run
from d2l_utils.training.record import (
    command_line,
    device_description,
    library_versions,
    timestamp,
)

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # run as a script, from anywhere: benchmarks.* importable too
    sys.path.insert(0, str(ROOT))
from benchmarks.gpu_check_tables import PRECISION_NAMES, WAY_TITLES, WAYS  # noqa: E402

# Matmul dtype of each precision (accelerate's names), for the measured peak.
PRECISION_DTYPES = {"no": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
_RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunArguments)}


def _job(name: str, default: Any = dataclasses.MISSING, help: str = "") -> Any:
    """`RunArguments.<name>` as a bench option: its description and range (so every bench option
    is checked as `train` checks it), with the bench's own default or help where given."""
    return option(default, help, like=_RUN_FIELDS[name])


@dataclass
class BenchArguments:
    """Options of `python benchmarks/bench.py`: one job (as for `train`), timed four ways (fixed
    padding, hf trainer, hf trainer + group_by_length, library loop), and how to time it."""

    task: str = _job("task")
    model: str | None = _job("model")
    method: str = _job("method")
    data_dir: str | None = _job("data_dir")
    tiny: bool = _job("tiny")
    random_init: bool = _job("random_init")
    backend: Literal["peft", "adapters", "hf"] | None = _job("backend")
    trainable_layers: int = _job("trainable_layers")
    r: int = _job("r")
    alpha: int = _job("alpha")
    dropout: float = _job("dropout")
    target_modules: list[str] = _job("target_modules")
    prefix_length: int = _job("prefix_length")
    num_virtual_tokens: int = _job("num_virtual_tokens")
    head: HeadMode | None = _job("head")
    lr: float | None = _job("lr")
    seed: int = _job("seed")
    group_by_length: bool = _job("group_by_length")
    max_train_samples: int | None = _job("max_train_samples")
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = _job("mixed_precision")
    batch_size: int = _job("batch_size", 32, "training batch size of every way")
    max_seq_length: int = _job("max_seq_length", 128, "truncation length, and the fixed length "
                                                      "the fixed-padding way pads to")
    steps: int = option(30, "timed optimizer steps per way", bounds=Bounds(1))
    untimed_steps: int = option(3, "steps per way before the timed ones (not learning-rate "
                                   "warmup: that is the job's --warmup-ratio)", bounds=Bounds(0))
    threads: int | None = option(None, "torch CPU threads (default: torch's)", bounds=Bounds(1))
    peak_tflops: float | None = option(
        None, "peak TFLOP/s for FLOP utilization (default: measured with bf16 matmuls on the "
        "GPU)", bounds=Bounds(0, open_low=True))
    output: str | None = option(None, "also append the JSON line to this file", nonempty=True)

    def __post_init__(self) -> None:
        check_options(self)  # each option as `train` checks it, before `run_arguments` uses it
        resolve_precision(self.mixed_precision)
        self.run_arguments()  # the job's combined checks (method, backend, task), as `train`'s

    @property
    def total_steps(self) -> int:
        return self.untimed_steps + self.steps

    def run_arguments(self) -> RunArguments:
        """The `RunArguments` of the library way; the other ways read the same values."""
        shared = {k: v for k, v in dataclasses.asdict(self).items() if k in _RUN_FIELDS}
        # The library loop evaluates once after training (untimed): keep that evaluation short.
        return RunArguments(**shared, max_steps=self.total_steps,
                            max_eval_samples=2 * self.batch_size, save_model=False,
                            progress=False)


# ---------------------------------------------------------------------------------------------
# Measuring


class PeakMemory:
    """Peak memory while a block runs: `max_memory_allocated` on a GPU, else the process RSS
    sampled by a background thread (the RSS includes whatever earlier ways left allocated)."""

    def __init__(self, device: torch.device, interval_s: float = 0.02):
        self.device, self.interval_s, self.peak_bytes = device, interval_s, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        process = psutil.Process()
        while True:
            self.peak_bytes = max(self.peak_bytes, process.memory_info().rss)
            if self._stop.wait(self.interval_s):
                return

    def __enter__(self) -> "PeakMemory":
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.device.type == "cuda":
            self.peak_bytes = torch.cuda.max_memory_allocated(self.device)
        else:
            self._stop.set()
            self._thread.join()


class StepMeter:
    """Times optimizer steps `untimed + 1 .. untimed + steps` and counts their examples and real
    tokens, through hooks, so every way is measured by the same code whatever runs the loop.
    Training forward `k` belongs to optimizer step `k` (no gradient accumulation in any way); a
    step fp16's gradient scaler skips (inf/NaN gradients) still counts, and as skipped."""

    def __init__(self, model: nn.Module, untimed_steps: int, steps: int, device: torch.device):
        self.model, self.device = model, device
        self.first, self.last = untimed_steps, untimed_steps + steps  # timed: (first, last]
        self.forwards = self.optimizer_steps = self.skipped_steps = 0
        self.examples = self.padded_tokens = 0
        self.token_counts: list[torch.Tensor] = []  # summed at the end: no sync per step
        self.times: dict[int, float] = {}
        self._handles: list[Any] = []
        self._scaler_step: Callable[..., Any] | None = None

    def _on_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        if not (module.training and torch.is_grad_enabled()):
            return  # evaluation
        self.forwards += 1
        if self.first < self.forwards <= self.last:
            input_ids, mask = kwargs["input_ids"], kwargs["attention_mask"]
            self.examples += input_ids.shape[0]
            self.padded_tokens += input_ids.numel()
            self.token_counts.append(mask.sum())

    def _on_step(self, optimizer: torch.optim.Optimizer, args: tuple, kwargs: dict) -> None:
        self.optimizer_steps += 1
        if self.optimizer_steps in (self.first, self.last):
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.times[self.optimizer_steps] = time.perf_counter()

    def _count_skipped_steps(self) -> None:
        """Wrap `torch.amp.GradScaler.step` (the class accelerate and the Trainer use) so that
        a step it skips calls `_on_step` too; `__exit__` restores it."""
        original = self._scaler_step = torch.amp.GradScaler.step
        meter = self

        def step(scaler: torch.amp.GradScaler, optimizer: torch.optim.Optimizer, *args: Any,
                 **kwargs: Any) -> Any:
            before = meter.optimizer_steps
            result = original(scaler, optimizer, *args, **kwargs)
            if meter.optimizer_steps == before:  # skipped: inf/NaN gradients at this scale
                meter.skipped_steps += meter.first < before + 1 <= meter.last
                meter._on_step(optimizer, (), {})
            return result

        torch.amp.GradScaler.step = step  # type: ignore[method-assign]

    def __enter__(self) -> "StepMeter":
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handles = [
            self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True),
            register_optimizer_step_post_hook(self._on_step)]
        self._count_skipped_steps()
        if self.first == 0:
            self.times[0] = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        if self._scaler_step is not None:
            torch.amp.GradScaler.step = self._scaler_step  # type: ignore[method-assign]
        self.model = None  # type: ignore[assignment]  # let the caller free it

    def result(self) -> dict[str, Any]:
        """Examples, real tokens and seconds of the timed steps, and the rates."""
        if self.last not in self.times or self.forwards < self.last:
            raise RuntimeError(f"expected {self.last} training steps, saw {self.optimizer_steps} "
                               f"optimizer steps and {self.forwards} training forwards")
        wall = self.times[self.last] - self.times[self.first]
        tokens = int(torch.stack(self.token_counts).sum().item())
        return {"examples": self.examples, "tokens": tokens, "skipped_steps": self.skipped_steps,
                "padded_tokens": self.padded_tokens,
                "padding_share": round(1 - tokens / self.padded_tokens, 4),
                "wall_s": round(wall, 6), "examples_per_s": round(self.examples / wall, 3),
                "tokens_per_s": round(tokens / wall, 3)}


# ---------------------------------------------------------------------------------------------
# The four ways


def train_without_length(run: PreparedRun) -> Dataset:
    """The tokenized train split without the `length` column, which only the sampler reads."""
    return run.data["train"].remove_columns("length")


def endless(loader: DataLoader) -> Iterator[dict[str, torch.Tensor]]:
    """Batches from `loader`, epoch after epoch."""
    while True:
        yield from loader


def run_fixed_padding(run: PreparedRun, device: torch.device, total_steps: int) -> None:
    """The seeds' way: pad to `max_seq_length`, fp32, shuffled batches, a minimal AdamW loop."""
    args = run.args
    collate = DataCollatorWithPadding(run.tokenizer, padding="max_length",
                                      max_length=args.max_seq_length, return_tensors="pt")
    loader = DataLoader(train_without_length(run), batch_size=args.batch_size, shuffle=True,
                        collate_fn=collate, generator=torch.Generator().manual_seed(args.seed))
    model = run.model.to(device).train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad],
                                  lr=args.lr)
    for _, batch in zip(range(total_steps), endless(loader)):
        model(**{k: v.to(device, non_blocking=True) for k, v in batch.items()}).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def expert_trainer_options(mixed_precision: str) -> dict[str, Any]:
    """The `TrainingArguments` an expert sets for speed: length grouping, fused AdamW and 16-bit
    training where the hardware does it natively (`mixed_precision` resolved as for the loop)."""
    return {"group_by_length": True, "optim": "adamw_torch_fused",
            **hf_precision_kwargs(mixed_precision)}


def run_hf_trainer(run: PreparedRun, device: torch.device, total_steps: int,
                   expert: bool = False) -> None:
    """`transformers.Trainer` with `DataCollatorWithPadding` and default `TrainingArguments`
    (with `expert`: `expert_trainer_options` set too, the Trainer measuring the lengths)."""
    args = run.args
    options = expert_trainer_options(args.mixed_precision) if expert else {}
    with tempfile.TemporaryDirectory(prefix="d2l_bench_") as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=args.batch_size,
            max_steps=total_steps, learning_rate=args.lr, seed=args.seed, report_to=[],
            save_strategy="no", **options,
            # pass every column as the other ways do (peft models do not name token_type_ids)
            remove_unused_columns=False,
            disable_tqdm=True)  # cosmetic: no progress bar in the bench output
        trainer = Trainer(model=run.model, args=training_args,
                          train_dataset=train_without_length(run),
                          data_collator=DataCollatorWithPadding(run.tokenizer))
        trainer.remove_callback(PrinterCallback)  # keep stdout to the table and the JSON
        trainer.train()


def run_library_loop(run: PreparedRun, device: torch.device, total_steps: int) -> None:
    """`d2l_utils.training.loop.train_with_loop`: length-grouped batches, dynamic padding, fused
    AdamW (and fp16/bf16 autocast on a GPU). `run.args.max_steps` is `total_steps`."""
    assert run.args.max_steps == total_steps
    with tempfile.TemporaryDirectory(prefix="d2l_bench_") as output_dir:  # nothing in runs/
        train_with_loop(dataclasses.replace(
            run, args=dataclasses.replace(run.args, output_dir=output_dir)))


RUNNERS: dict[str, Callable[[PreparedRun, torch.device, int], None]] = {
    "fixed_padding": run_fixed_padding, "hf_trainer": run_hf_trainer,
    "hf_trainer_grouped": functools.partial(run_hf_trainer, expert=True),  # as an expert does
    "library_loop": run_library_loop}


# ---------------------------------------------------------------------------------------------
# The benchmark


def seeded_model(run: PreparedRun) -> nn.Module:
    """A fresh model for one way; the same seed gives every way the same initial weights."""
    set_seed(run.args.seed)
    return build_model(run.backbone, run.task, run.method)


def datasheet_peak_flops(device: torch.device) -> float | None:
    """The vendor's dense bf16/fp16 peak of this GPU, when it is in `d2l_utils.flops.PEAK_FLOPS`."""
    return None if device.type != "cuda" else datasheet_peak_for(torch.cuda.get_device_name(device))


def matmul_flops(device: torch.device, dtype: torch.dtype = torch.bfloat16, size: int = 8192,
                 repeats: int = 20) -> float:
    """FLOP/s of square `size` matmuls in `dtype` on `device` (GPU or CPU), after 3 untimed
    ones: the ceiling that a measured MFU is taken against (datasheet peaks are rarely
    reached)."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    sync()
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    sync()
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def peak_flops(device: torch.device, peak_tflops: float | None) -> float | None:
    """Peak FLOP/s for MFU: `--peak-tflops` when given, else measured on this GPU (large bf16
    matmuls, `matmul_flops`), else None: on a CPU `bench` reports no MFU."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    return matmul_flops(device) if device.type == "cuda" else None


def measure_way(name: str, run: PreparedRun, bench: BenchArguments,
                device: torch.device) -> dict[str, Any]:
    """Train one way on a fresh seeded model and return its measurements."""
    model = seeded_model(run)
    with PeakMemory(device) as memory, StepMeter(model, bench.untimed_steps, bench.steps,
                                                 device) as meter:
        RUNNERS[name](dataclasses.replace(run, model=model), device, bench.total_steps)
    del model  # free it before the next way starts, so that way's peak memory is its own
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    return {**meter.result(), "peak_memory_mb": round(memory.peak_bytes / 2**20, 1)}


def add_flop_utilization(ways: dict[str, dict], num_params: int, peak: float | None,
                         flops_per_param: float = 6.0, key: str = "mfu") -> None:
    """Model FLOP utilization of every way under `key` (nothing without a peak):
    flops_per_param x parameters x real tokens/s / peak FLOP/s. 6N per token (the usual
    convention) counts the weight gradients of frozen parameters too, so for parameter-efficient
    methods it overstates the work; the method's factor (4 with a frozen backbone) does not."""
    for result in ways.values() if peak is not None else ():
        result[key] = round(flops_per_param * num_params * result["tokens_per_s"] / peak, 5)


def way_precisions(mixed_precision: str) -> dict[str, str]:
    """The precision each way trains in: fixed padding and the Trainer's defaults fp32 (`no`),
    the expert Trainer and the library loop `mixed_precision` as resolved on this machine."""
    return dict(zip(WAYS, ("no", "no", *[resolve_precision(mixed_precision)] * 2)))


def prepare_bench(args: BenchArguments) -> tuple[PreparedRun, dict[str, int], torch.device]:
    """The tokenized data and tokenizer every way shares (no model: each way seeds its own),
    the parameter counts and the device."""
    if args.threads:
        torch.set_num_threads(args.threads)
    run = prepare_run(check_against_model(args.run_arguments()))  # before data and model
    params = count_parameters(run.model)
    run.model = None  # type: ignore[assignment]  # each way builds its own seeded copy
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_single_epoch(run, args)
    return run, params, device


def bench(args: BenchArguments) -> dict[str, Any]:
    """Run the four ways and return the report (the JSON line's content)."""
    run, params, device = prepare_bench(args)
    load_before = os.getloadavg()[0]  # other processes on the machine skew CPU timings
    ways = {name: measure_way(name, run, args, device) for name in WAYS}
    for name, precision in way_precisions(args.mixed_precision).items():
        ways[name]["precision"] = precision
    peak = peak_flops(device, args.peak_tflops)
    add_flop_utilization(ways, params["total"], peak)
    library = ways["library_loop"]["examples_per_s"]
    trainer, grouped = (ways[k]["examples_per_s"] for k in ("hf_trainer", "hf_trainer_grouped"))
    return {
        "model": run.args.model, "task": run.task.name, "method": run.method.name,
        "steps": args.steps, "untimed_steps": args.untimed_steps, "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length, "group_by_length": args.group_by_length,
        "mixed_precision": args.mixed_precision, "seed": args.seed, "lr": run.args.lr,
        "train_examples": len(run.data["train"]), "device": device_description(device),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "params": params, "peak_flops": peak, "peak_flops_datasheet": datasheet_peak_flops(device),
        **ways,
        "ratio_vs_fixed_padding": round(library / ways["fixed_padding"]["examples_per_s"], 6),
        "ratio_vs_hf_trainer": round(library / trainer, 6),
        "ratio_vs_hf_trainer_grouped": round(library / grouped, 6),
        # the Trainer's group_by_length alone, x its defaults, and as a share of the loop's gain
        "hf_group_by_length_speedup": round(grouped / trainer, 6),
        "hf_group_by_length_share": group_by_length_share(trainer, grouped, library),
        "command": command_line(), "versions": library_versions(), "finished_at": timestamp()}


def group_by_length_share(trainer: float, grouped: float, library: float) -> float | None:
    """How much of the library loop's gain over the Trainer's defaults (examples/s) the
    Trainer's `group_by_length=True` alone gives: (grouped - trainer) / (library - trainer).
    1.0: all of it; above 1: the flag alone is faster than the loop. None when the loop is
    not faster than the Trainer's defaults (no gain to share)."""
    return round((grouped - trainer) / (library - trainer), 4) if library > trainer else None


def check_single_epoch(run: PreparedRun, args: BenchArguments) -> None:
    """Warn when the steps run past one epoch: the library loop then evaluates between epochs,
    inside the timed window."""
    examples = len(run.data["train"])
    if args.total_steps * args.batch_size > examples:
        print(f"warning: {args.total_steps} steps x batch {args.batch_size} is more than one "
              f"epoch ({examples} examples); the library loop's evaluation between epochs is "
              "timed too", file=sys.stderr)


def format_table(report: dict[str, Any]) -> str:
    """The four ways side by side, the library loop's speed-ups, and the Trainer flag's."""
    mfu = report["peak_flops"] is not None
    header = (f"{'way':29s} {'examples/s':>11s} {'tokens/s':>10s} {'padding':>8s} "
              f"{'peak MB':>9s} {'wall s':>8s} {'prec':>5s}" + (f" {'MFU':>7s}" if mfu else ""))
    lines = [f"bench: {report['task']} | {report['method']} | {report['model']} | "
             f"{report['steps']} steps x batch {report['batch_size']} (after "
             f"{report['untimed_steps']} untimed steps) | {report['device']}", header]
    for name in WAYS:
        way = report[name]
        lines.append(f"{WAY_TITLES[name]:29s} {way['examples_per_s']:11.2f} "
                     f"{way['tokens_per_s']:10.1f} {way['padding_share']:8.1%} "
                     f"{way['peak_memory_mb']:9.1f} {way['wall_s']:8.2f} "
                     f"{PRECISION_NAMES.get(way.get('precision', ''), ''):>5s}"
                     + (f" {way['mfu']:7.2%}" if mfu else ""))
    lines.append(f"library loop: {report['ratio_vs_fixed_padding']:.2f}x fixed padding, "
                 f"{report['ratio_vs_hf_trainer']:.2f}x hf trainer, "
                 f"{report['ratio_vs_hf_trainer_grouped']:.2f}x hf trainer + group_by_length "
                 "(examples/s)")
    share = report["hf_group_by_length_share"]
    lines.append(f"hf trainer's group_by_length alone: {report['hf_group_by_length_speedup']:.2f}x "
                 "its defaults" + (f", {share:.0%} of the library loop's gain over them"
                                   if share is not None else ""))
    return "\n".join(lines)


def run_bench(args: BenchArguments) -> dict[str, Any]:
    """Benchmark, print the table and then the JSON line (and append it to `--output`)."""
    report = bench(args)
    line = json.dumps(report)
    print(format_table(report), line, sep="\n", flush=True)
    if args.output:
        with open(args.output, "a") as file:
            file.write(line + "\n")
    return report


def main(argv: list[str] | None = None) -> int:
    """`python benchmarks/bench.py [options]`, with the exit codes of `python -m d2l_utils`."""
    from d2l_utils.cli import parse, run_command

    def command(args: list[str]) -> int:
        run_bench(parse(BenchArguments, args, "benchmarks/bench.py", program="python"))
        return 0

    return run_command(command, sys.argv[1:] if argv is None else argv, from_shell=argv is None)


if __name__ == "__main__":
    sys.exit(main())
