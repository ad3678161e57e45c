"""`python -m d2l_utils bench`: the same training job four ways, timed in one process.

1. fixed padding: every example padded to `max_seq_length`, fp32, shuffled batches from a plain
   `DataLoader` and a minimal AdamW loop (the seeds' way);
2. hf trainer: `transformers.Trainer` with `DataCollatorWithPadding` and default arguments;
3. hf trainer + group_by_length: the same with `group_by_length=True`, the one flag an
   experienced user sets (the Trainer's length-grouped sampler: mega-batches of 50 batches);
4. library loop: `train_with_loop` (length-grouped batches whose mega-batch size the sampler
   chooses from the labels: 50 batches, or 3 where length goes with the label; dynamic padding,
   fused AdamW; on a GPU bf16 autocast).

Ways 2 and 3 differ in that one flag only, so together they show how much of the library loop's
speed-up over the Trainer's defaults the flag alone gives (`hf_group_by_length_share`).

Each way starts from the same seeded model and the same tokenized data, runs a few untimed
warm-up steps, then `steps` timed optimizer steps. The same hooks measure all four: a forward
pre-hook counts the examples and real (attention-mask) tokens of each training batch, and a
global optimizer-step hook takes the time after the last warm-up step and after the last timed
step. The output is a table and, last, one JSON line.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import re
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Literal

import psutil
import torch
import torch.nn as nn
from datasets import Dataset
from torch.utils.data import DataLoader
from transformers import DataCollatorWithPadding, Trainer, TrainingArguments, set_seed
from transformers.trainer_callback import PrinterCallback

from .arguments import RunArguments
from .methods import build_model, count_parameters
from .training.loop import train_with_loop
from .training.prepare import PreparedRun, prepare_run
from .training.record import command_line, device_description, library_versions, timestamp

WAYS = ("fixed_padding", "hf_trainer", "hf_trainer_grouped", "library_loop")
WAY_TITLES = {"fixed_padding": "fixed padding", "hf_trainer": "hf trainer",
              "hf_trainer_grouped": "hf trainer + group_by_length",
              "library_loop": "library loop"}
# Dense bf16/fp16 tensor-core peaks (FLOP/s) from the vendors' datasheets; first match wins.
PEAK_FLOPS: tuple[tuple[str, float], ...] = (
    (r"H100.*PCIe", 756e12), (r"H100", 989e12), (r"H200", 989e12), (r"A100", 312e12),
    (r"\bT4\b", 65e12), (r"\bL4\b", 121e12),
)
_RUN_FIELDS = {f.name: f for f in dataclasses.fields(RunArguments)}


def _run_option(name: str) -> Any:
    """A field with the default and help of `RunArguments.<name>`, so both stay in step."""
    source = _RUN_FIELDS[name]
    options: dict[str, Any] = {"metadata": dict(source.metadata)}
    if source.default_factory is not dataclasses.MISSING:
        options["default_factory"] = source.default_factory
    elif source.default is not dataclasses.MISSING:
        options["default"] = source.default
    return field(**options)


class BenchOptionError(ValueError):
    """An invalid bench option (the CLI exits with code 2)."""


def _help(text: str) -> dict[str, Any]:
    return {"metadata": {"help": text}}


@dataclass
class BenchArguments:
    """Options of `python -m d2l_utils bench`: the job (as for `train`) and how to time it."""

    task: str = _run_option("task")
    model: str | None = _run_option("model")
    method: str = _run_option("method")
    data_dir: str | None = _run_option("data_dir")
    tiny: bool = _run_option("tiny")
    random_init: bool = _run_option("random_init")
    backend: Literal["peft", "adapters"] | None = _run_option("backend")
    trainable_layers: int = _run_option("trainable_layers")
    r: int = _run_option("r")
    alpha: int = _run_option("alpha")
    dropout: float = _run_option("dropout")
    target_modules: list[str] = _run_option("target_modules")
    prefix_length: int = _run_option("prefix_length")
    num_virtual_tokens: int = _run_option("num_virtual_tokens")
    head: Literal["train", "bias", "frozen"] | None = _run_option("head")
    lr: float | None = _run_option("lr")
    seed: int = _run_option("seed")
    group_by_length: bool = _run_option("group_by_length")
    batch_size: int = field(default=32, **_help("training batch size of every way"))
    max_seq_length: int = field(default=128, **_help(
        "truncation length, and the fixed length the fixed-padding way pads to"))
    steps: int = field(default=30, **_help("timed optimizer steps per way"))
    untimed_steps: int = field(default=3, **_help(
        "steps per way before the timed ones (not learning-rate warmup: that is the job's "
        "--warmup-ratio)"))
    threads: int | None = field(default=None, **_help("torch CPU threads (default: torch's)"))
    peak_tflops: float | None = field(default=None, **_help(
        "peak TFLOP/s for FLOP utilization (default: measured with bf16 matmuls on the GPU)"))
    output: str | None = field(default=None, **_help("also append the JSON line to this file"))

    def __post_init__(self) -> None:
        if self.steps < 1 or self.untimed_steps < 0:
            raise BenchOptionError(f"--steps must be >= 1 and --untimed-steps >= 0, got "
                                   f"{self.steps} and {self.untimed_steps}")

    @property
    def total_steps(self) -> int:
        return self.untimed_steps + self.steps

    def run_arguments(self) -> RunArguments:
        """The `RunArguments` of the library way; the other two ways read the same values."""
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
        self.device, self.interval_s = device, interval_s
        self.peak_bytes = 0
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

    @property
    def megabytes(self) -> float:
        return self.peak_bytes / 2**20


class StepMeter:
    """Times optimizer steps `untimed + 1 .. untimed + steps` and counts their examples and real
    tokens, through hooks, so every way is measured by the same code whatever runs the loop.

    Training forward `k` belongs to optimizer step `k` (no gradient accumulation in any way).
    """

    def __init__(self, model: nn.Module, untimed_steps: int, steps: int, device: torch.device):
        self.model, self.device = model, device
        self.first, self.last = untimed_steps, untimed_steps + steps  # timed: (first, last]
        self.forwards = self.optimizer_steps = 0
        self.examples = self.padded_tokens = 0
        self.token_counts: list[torch.Tensor] = []  # summed at the end: no sync per step
        self.times: dict[int, float] = {}
        self._handles: list[Any] = []

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

    def __enter__(self) -> "StepMeter":
        from torch.optim.optimizer import register_optimizer_step_post_hook

        self._handles = [
            self.model.register_forward_pre_hook(self._on_forward, with_kwargs=True),
            register_optimizer_step_post_hook(self._on_step)]
        if self.first == 0:
            self.times[0] = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self.model = None  # type: ignore[assignment]  # let the caller free it

    def result(self) -> dict[str, Any]:
        """Examples, real tokens and seconds of the timed steps, and the rates."""
        if self.last not in self.times or self.forwards < self.last:
            raise RuntimeError(f"expected {self.last} training steps, saw {self.optimizer_steps} "
                               f"optimizer steps and {self.forwards} training forwards")
        wall = self.times[self.last] - self.times[self.first]
        tokens = int(torch.stack(self.token_counts).sum().item())
        return {"examples": self.examples, "tokens": tokens,
                "padded_tokens": self.padded_tokens,
                "padding_share": round(1 - tokens / self.padded_tokens, 4),
                "wall_s": round(wall, 6),
                "examples_per_s": round(self.examples / wall, 3),
                "tokens_per_s": round(tokens / wall, 1)}


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
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def run_hf_trainer(run: PreparedRun, device: torch.device, total_steps: int,
                   group_by_length: bool = False) -> None:
    """`transformers.Trainer` with `DataCollatorWithPadding` and default `TrainingArguments`
    (with `group_by_length`: that one flag set, the Trainer measuring the lengths itself)."""
    args = run.args
    with tempfile.TemporaryDirectory(prefix="d2l_bench_") as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir, per_device_train_batch_size=args.batch_size,
            max_steps=total_steps, learning_rate=args.lr, seed=args.seed, report_to=[],
            save_strategy="no", group_by_length=group_by_length,
            # pass every column as the other ways do (peft models do not name token_type_ids)
            remove_unused_columns=False,
            disable_tqdm=True)  # cosmetic: no progress bar in the bench output
        trainer = Trainer(model=run.model, args=training_args,
                          train_dataset=train_without_length(run),
                          data_collator=DataCollatorWithPadding(run.tokenizer))
        trainer.remove_callback(PrinterCallback)  # keep stdout to the table and the JSON
        trainer.train()


def run_hf_trainer_grouped(run: PreparedRun, device: torch.device, total_steps: int) -> None:
    """The Trainer with `group_by_length=True`, everything else as `run_hf_trainer`."""
    run_hf_trainer(run, device, total_steps, group_by_length=True)


def run_library_loop(run: PreparedRun, device: torch.device, total_steps: int) -> None:
    """`d2l_utils.training.loop.train_with_loop`: length-grouped batches and dynamic padding (and
    bf16 autocast with fused AdamW on a GPU). `run.args.max_steps` is `total_steps`."""
    assert run.args.max_steps == total_steps
    with tempfile.TemporaryDirectory(prefix="d2l_bench_") as output_dir:  # nothing in runs/
        train_with_loop(dataclasses.replace(
            run, args=dataclasses.replace(run.args, output_dir=output_dir)))


RUNNERS: dict[str, Callable[[PreparedRun, torch.device, int], None]] = {
    "fixed_padding": run_fixed_padding, "hf_trainer": run_hf_trainer,
    "hf_trainer_grouped": run_hf_trainer_grouped, "library_loop": run_library_loop}


# ---------------------------------------------------------------------------------------------
# The benchmark


def seeded_model(run: PreparedRun) -> nn.Module:
    """A fresh model for one way; the same seed gives every way the same initial weights."""
    set_seed(run.args.seed)
    return build_model(run.backbone, run.task, run.method)


def datasheet_peak_flops(device: torch.device) -> float | None:
    """The vendor's dense bf16/fp16 peak of this GPU, when it is in `PEAK_FLOPS`."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for pattern, peak in PEAK_FLOPS if re.search(pattern, name)), None)


def measured_peak_flops(device: torch.device, size: int = 8192, repeats: int = 20,
                        dtype: torch.dtype = torch.bfloat16) -> float | None:
    """The best FLOP/s this GPU reaches on large square bf16 matmuls: the ceiling MFU is
    measured against (datasheet peaks are rarely reachable). None on CPU."""
    if device.type != "cuda":
        return None
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    torch.cuda.synchronize(device)
    return 2 * size**3 * repeats / (time.perf_counter() - start)


def peak_flops(device: torch.device, peak_tflops: float | None) -> float | None:
    """Peak FLOP/s for MFU: `--peak-tflops` when given, else measured on this GPU (bf16
    matmul), else None (CPU)."""
    if peak_tflops is not None:
        return peak_tflops * 1e12
    return measured_peak_flops(device)


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
    return {**meter.result(), "peak_memory_mb": round(memory.megabytes, 1)}


def add_flop_utilization(ways: dict[str, dict], num_params: int, peak: float | None) -> None:
    """Model FLOP utilization, 6 x parameters x real tokens / time / peak, for every way.

    6N per token counts the weight gradients of frozen parameters too, so for parameter-
    efficient methods it overstates the work; it is the usual convention all the same."""
    if peak is None:
        return
    for result in ways.values():
        result["mfu"] = round(6 * num_params * result["tokens_per_s"] / peak, 5)


def bench(args: BenchArguments) -> dict[str, Any]:
    """Run the four ways and return the report (the JSON line's content)."""
    if args.threads:
        torch.set_num_threads(args.threads)
    run = prepare_run(args.run_arguments())  # data and tokenizer, shared by all ways
    params = count_parameters(run.model)
    run.model = None  # type: ignore[assignment]  # each way builds its own seeded copy
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    check_single_epoch(run, args)
    load_before = os.getloadavg()[0]  # other processes on the machine skew CPU timings
    ways = {name: measure_way(name, run, args, device) for name in WAYS}
    peak = peak_flops(device, args.peak_tflops)
    add_flop_utilization(ways, params["total"], peak)
    library = ways["library_loop"]["examples_per_s"]
    trainer, grouped = (ways[k]["examples_per_s"] for k in ("hf_trainer", "hf_trainer_grouped"))
    return {
        "model": run.args.model, "task": run.task.name, "method": run.method.name,
        "steps": args.steps, "untimed_steps": args.untimed_steps, "batch_size": args.batch_size,
        "max_seq_length": args.max_seq_length, "group_by_length": args.group_by_length,
        "seed": args.seed, "lr": run.args.lr,
        "train_examples": len(run.data["train"]), "device": device_description(device),
        "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": os.getloadavg()[0]},
        "params": params, "peak_flops": peak,
        "peak_flops_datasheet": datasheet_peak_flops(device),
        **ways,
        "ratio_vs_fixed_padding": round(library / ways["fixed_padding"]["examples_per_s"], 6),
        "ratio_vs_hf_trainer": round(library / trainer, 6),
        "ratio_vs_hf_trainer_grouped": round(library / grouped, 6),
        # the Trainer's group_by_length alone, x its defaults, and as a share of the loop's gain
        "hf_group_by_length_speedup": round(grouped / trainer, 6),
        "hf_group_by_length_share": group_by_length_share(trainer, grouped, library),
        "command": command_line(), "versions": library_versions(),
        "finished_at": timestamp(),
    }


def group_by_length_share(trainer: float, grouped: float, library: float) -> float | None:
    """How much of the library loop's gain over the Trainer's defaults (examples/s) the
    Trainer's `group_by_length=True` alone gives: (grouped - trainer) / (library - trainer).
    1.0: all of it; above 1: the flag alone is faster than the loop. None when the loop is
    not faster than the Trainer's defaults (no gain to share)."""
    if library <= trainer:
        return None
    return round((grouped - trainer) / (library - trainer), 4)


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
              f"{'peak MB':>9s} {'wall s':>8s}" + (f" {'MFU':>7s}" if mfu else ""))
    lines = [f"bench: {report['task']} | {report['method']} | {report['model']} | "
             f"{report['steps']} steps x batch {report['batch_size']} (after "
             f"{report['untimed_steps']} untimed steps) | {report['device']}", header]
    for name in WAYS:
        way = report[name]
        lines.append(f"{WAY_TITLES[name]:29s} {way['examples_per_s']:11.2f} "
                     f"{way['tokens_per_s']:10.1f} {way['padding_share']:8.1%} "
                     f"{way['peak_memory_mb']:9.1f} {way['wall_s']:8.2f}"
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
    print(format_table(report))
    print(line, flush=True)
    if args.output:
        with open(args.output, "a") as file:
            file.write(line + "\n")
    return report
