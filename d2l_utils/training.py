"""The training loop: plain PyTorch with `accelerate` for devices, mixed precision and DDP.

`train(args)` builds everything from `RunArguments`, trains with the library's loop (or the
transformers `Trainer` when `args.trainer == "hf"`), evaluates every epoch, saves the trainable
weights and writes `record.json`. The same code runs unchanged under `accelerate launch`.
"""

from __future__ import annotations

import hashlib
import math
import os
import signal
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from datasets import DatasetDict
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import PreTrainedTokenizerBase, get_linear_schedule_with_warmup, set_seed

from .arguments import RunArguments
from .backbones import Backbone, load_config, load_tokenizer, resolve_backbone
from .data import load_task_data
from .methods import MethodConfig, build_model, check_trainable, count_parameters
from .metrics import compute_metrics, predictions_from_logits
from .preprocessing import LengthGroupedBatchSampler, make_collator, tokenize_splits
from .records import (command_line, device_description, library_versions, peak_memory_mb,
                      timestamp, write_record)
from .checkpoints import (check_disk_space, checkpoint_root, latest_checkpoint,
                          load_checkpoint, required_bytes, save_checkpoint)
from .saving import load_run_args, save_trainable, trainable_state_dict
from .tasks import TaskSpec


@dataclass
class PreparedRun:
    """Everything a trainer needs, built once from `RunArguments`."""

    args: RunArguments  # resolved: no None defaults left
    task: TaskSpec
    method: MethodConfig
    backbone: Backbone
    tokenizer: PreTrainedTokenizerBase
    model: nn.Module
    data: DatasetDict  # tokenized splits
    params: dict[str, Any]

    @property
    def data_source(self) -> str:
        if self.args.tiny:
            return "built-in fixtures (d2l_utils.fixtures)"
        return f"local GLUE folder {self.args.data_dir}" if self.args.data_dir else "hub"


def prepare_run(args: RunArguments) -> PreparedRun:
    """Load data, tokenizer and model, and apply the method; seeded, so runs repeat exactly."""
    args = args.resolved()
    task, method = args.task_spec, args.method_config()
    set_seed(args.seed)
    raw = load_task_data(task, data_dir=args.data_dir, tiny=args.tiny,
                         max_train_samples=args.max_train_samples,
                         max_eval_samples=args.max_eval_samples, seed=args.seed)
    backbone = resolve_backbone(args.model, random_init=args.random_init)
    check_trainable(backbone, task, method)  # before the weights are loaded
    tokenizer = load_tokenizer(backbone, load_config(backbone, task))
    model = build_model(backbone, task, method)
    data = tokenize_splits(raw, tokenizer, task, args.max_seq_length)
    return PreparedRun(args, task, method, backbone, tokenizer, model, data,
                       count_parameters(model))


def train(args: RunArguments) -> dict[str, Any]:
    """Run one training job end to end and return its record (also written to disk)."""
    started = time.perf_counter()
    check_output_dir(args.resolved().output_dir)
    run = prepare_run(args)
    if run.args.trainer == "hf":
        from .hf_trainer import train_with_hf_trainer

        result = train_with_hf_trainer(run)
    else:
        result = train_with_loop(run)
    result["wall_time_s"] = round(time.perf_counter() - started, 3)
    record = build_record(run, result)
    if result.pop("is_main_process", True):
        if run.args.save_model:
            save_trainable(result.pop("model", run.model), run.args.output_dir,
                           asdict(run.args), include_frozen=not run.backbone.pretrained)
        write_record(run.args.output_dir, record)
        print(summary_line(record), flush=True)
    return record


def check_output_dir(output_dir: str) -> Path:
    """Create the output directory and fail now, not after training, if it is not writable."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OSError(f"--output-dir {path} is not writable ({err.strerror}); choose "
                      "another folder") from None
    return path


# ---------------------------------------------------------------------------------------------
# The loop


def resolve_precision(choice: str) -> str:
    """`auto`: bf16 where the GPU supports it, else fp16 on GPU, fp32 on CPU."""
    if choice != "auto":
        return choice
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def optimizer_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Trainable parameters in two groups: no weight decay on biases and LayerNorm weights."""
    decay, no_decay = [], []
    for name, param in model.named_parameters():
        if param.requires_grad:
            (no_decay if param.ndim < 2 else decay).append(param)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training: a checkpoint was saved; the message says how to resume."""


class _StopFlag:
    """Turns SIGINT into a flag checked between steps, so a checkpoint is never half a step."""

    def __init__(self) -> None:
        self.raised, self._previous = False, None

    def __enter__(self) -> "_StopFlag":
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.raised:  # a second Ctrl-C stops at once
            raise KeyboardInterrupt
        self.raised = True

    def __exit__(self, *exc) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


# options that may change between a run and its resumption
_RESUME_FREE = {"resume", "progress", "save_every_steps", "keep_checkpoints"}


class ResumeError(ValueError):
    """A checkpoint that does not belong to this command."""


def _check_resumable(saved: dict, current: dict, path: Path) -> None:
    changed = {k: (saved.get(k), v) for k, v in current.items()
               if k not in _RESUME_FREE and saved.get(k) != v}
    if changed:
        listing = ", ".join(f"--{k.replace('_', '-')} {old!r} -> {new!r}"
                            for k, (old, new) in changed.items())
        raise ResumeError(f"cannot resume from {path}: options differ from the saved run "
                         f"({listing}); rerun with the original options or another --output-dir")


def train_with_loop(run: PreparedRun) -> dict[str, Any]:
    """Train `run.model` with AdamW, linear warmup/decay and clipping; evaluate every epoch;
    checkpoint every `save_every_steps` and resume exactly from the newest checkpoint."""
    from accelerate import Accelerator
    from accelerate.utils import gather_object

    args, task = run.args, run.task
    accelerator = Accelerator(mixed_precision=resolve_precision(args.mixed_precision))
    device = accelerator.device
    collate = make_collator(run.tokenizer, pad_to_multiple_of=8 if device.type == "cuda" else None)
    train_ds = run.data["train"]
    sampler = LengthGroupedBatchSampler(train_ds["length"], args.batch_size, seed=args.seed,
                                        group_by_length=args.group_by_length)
    # Own generator: starting an epoch must not draw from the global RNG (dropout), or a
    # resumed run would diverge from an uninterrupted one.
    train_loader = DataLoader(train_ds, batch_sampler=sampler, collate_fn=collate,
                              generator=torch.Generator().manual_seed(args.seed))
    eval_loaders = {split: DataLoader(run.data[split], batch_size=args.eval_batch_size,
                                      collate_fn=collate) for split in task.eval_splits}
    optimizer = torch.optim.AdamW(optimizer_groups(run.model, args.weight_decay), lr=args.lr,
                                  eps=args.adam_epsilon,
                                  fused=device.type in ("cuda", "cpu"))  # one kernel, not a loop
    model, optimizer, train_loader = accelerator.prepare(run.model, optimizer, train_loader)
    eval_loaders = {k: accelerator.prepare(v) for k, v in eval_loaders.items()}

    steps_per_epoch = len(train_loader)
    total_steps = args.max_steps or math.ceil(args.epochs * steps_per_epoch)
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    # The scheduler is stepped by hand once per optimizer step (not prepared by accelerate,
    # which would step it once per process).
    scheduler = get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=args.num_warmup_steps(total_steps),
        num_training_steps=total_steps)
    trainable = [p for p in model.parameters() if p.requires_grad]
    include_frozen = not run.backbone.pretrained
    run_args = asdict(args)

    state: dict[str, Any] = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "train_time": 0.0,
                             "examples": 0, "tokens": 0, "window_loss": 0.0,
                             "window_start": 0, "epoch_loss": 0.0, "history": [],
                             "loss_log": [], "eval_log": []}
    latest = latest_checkpoint(args.output_dir) if args.resume else None
    if latest is not None:
        _check_resumable(load_run_args(latest), run_args, latest)
        state = load_checkpoint(latest, accelerator.unwrap_model(model), optimizer, scheduler,
                                accelerator.scaler)
        state.setdefault("eval_log", [])
        if accelerator.is_local_main_process:
            print(f"resuming from {latest} (step {state['step']} of {total_steps})", flush=True)
    elif args.resume and accelerator.is_local_main_process:
        print(f"no checkpoint in {checkpoint_root(args.output_dir)}; starting from scratch",
              flush=True)

    if args.save_every_steps and accelerator.is_main_process:
        check_disk_space(args.output_dir, required_bytes(run.model, include_frozen))

    def checkpoint(batch_in_epoch: int) -> Path | None:
        saved = None
        snapshot = {**state, "batch_in_epoch": batch_in_epoch,
                    "train_time": state["train_time"] + time.perf_counter() - tick}
        if accelerator.is_main_process:
            saved = save_checkpoint(args.output_dir, state["step"],
                                    accelerator.unwrap_model(model), optimizer, scheduler,
                                    accelerator.scaler, snapshot, run_args, include_frozen,
                                    args.keep_checkpoints)
        accelerator.wait_for_everyone()
        return saved

    step = state["step"]
    examples = torch.tensor(state["examples"], dtype=torch.long, device=device)
    tokens = torch.tensor(state["tokens"], dtype=torch.long, device=device)
    window_loss = torch.tensor(state["window_loss"], device=device)
    bar = tqdm(total=total_steps, initial=step, desc=f"{task.name} {run.method.name}",
               unit="step", disable=not (args.progress and accelerator.is_local_main_process))
    with _StopFlag() as stop:
        for epoch in range(state["epoch"], num_epochs):
            model.train()
            train_loader.set_epoch(epoch)  # the batch order depends on (seed, epoch) only
            skip = state["batch_in_epoch"] if epoch == state["epoch"] else 0
            loader = accelerator.skip_first_batches(train_loader, skip) if skip else train_loader
            epoch_loss = torch.tensor(state["epoch_loss"] if skip else 0.0, device=device)
            batch_in_epoch = skip
            tick = time.perf_counter()
            for batch in loader:
                loss = model(**batch).loss
                accelerator.backward(loss)
                if args.max_grad_norm > 0:
                    accelerator.clip_grad_norm_(trainable, args.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                step += 1
                batch_in_epoch += 1
                detached = loss.detach().float()
                epoch_loss += detached
                window_loss += detached
                examples += batch["input_ids"].shape[0]
                tokens += batch["attention_mask"].sum()
                bar.update(1)
                pause_for_tests(step, stop)
                logging_now = step % args.log_every == 0 or step == total_steps
                saving_now = bool(args.save_every_steps) and step % args.save_every_steps == 0
                if logging_now or saving_now or stop.raised:
                    mean = (window_loss / (step - state["window_start"])).item()
                    check_finite(mean, step, latest_checkpoint(args.output_dir))
                if logging_now:
                    state["loss_log"].append((step, round(mean, 6)))
                    window_loss.zero_()
                    state["window_start"] = step
                    bar.set_postfix(loss=f"{mean:.4f}", lr=f"{scheduler.get_last_lr()[0]:.2e}")
                if saving_now or stop.raised:
                    state.update(step=step, epoch=epoch, examples=examples.item(),
                                 tokens=tokens.item(), window_loss=window_loss.item(),
                                 epoch_loss=epoch_loss.item())
                    saved = checkpoint(batch_in_epoch)
                if stop.raised:
                    bar.close()
                    raise TrainingInterrupted(
                        f"interrupted at step {step}; checkpoint saved in {saved}. Resume with:"
                        f"\n  {command_line()} --resume")
                if (args.eval_every_steps and step % args.eval_every_steps == 0
                        and batch_in_epoch < steps_per_epoch and step < total_steps):
                    paused = time.perf_counter()  # evaluation time is not training time
                    state["eval_log"].append({
                        "step": step, "epoch": round(epoch + batch_in_epoch / steps_per_epoch, 4),
                        **{split: evaluate_model(model, eval_loader, task, accelerator)
                           for split, eval_loader in eval_loaders.items()}})
                    model.train()
                    tick += time.perf_counter() - paused
                if step >= total_steps:
                    break
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            state["train_time"] += time.perf_counter() - tick
            results = {split: evaluate_model(model, eval_loader, task, accelerator)
                       for split, eval_loader in eval_loaders.items()}
            state["history"].append({
                "epoch": round(step / steps_per_epoch, 4), "step": step,
                "train_loss": round((epoch_loss / max(batch_in_epoch, 1)).item(), 6),
                **results})
            state.update(epoch=epoch + 1, batch_in_epoch=0, epoch_loss=0.0)
            if args.progress and accelerator.is_local_main_process:
                bar.write(_epoch_line(state["history"][-1], task))
            if step >= total_steps:
                break
    bar.close()

    history = state["history"]
    examples_total = accelerator.reduce(examples, reduction="sum").item()
    tokens_total = accelerator.reduce(tokens, reduction="sum").item()
    unwrapped = accelerator.unwrap_model(model)
    # One digest per process: under DDP they must all be equal (the ranks stayed in sync).
    digests = gather_object([weights_digest(unwrapped)])
    accelerator.wait_for_everyone()
    return {"metrics": {split: history[-1][split] for split in task.eval_splits},
            "history": history, "loss_log": state["loss_log"], "eval_log": state["eval_log"],
            "steps": step,
            "epochs_run": round(step / steps_per_epoch, 4),
            "train_time_s": round(state["train_time"], 3),
            "train_examples": examples_total, "train_tokens": tokens_total,
            "device": device_description(device), "num_processes": accelerator.num_processes,
            "mixed_precision": accelerator.mixed_precision,
            "peak_memory_mb": round(peak_memory_mb(device), 1),
            "resumed_from": str(latest) if latest else None,
            "rank_weight_digests": digests,
            "is_main_process": accelerator.is_main_process, "model": unwrapped}


PAUSE_ENV = "D2L_PAUSE_AT_STEP"


def pause_for_tests(step: int, stop: _StopFlag) -> None:
    """Testing hook: with `D2L_PAUSE_AT_STEP=N`, print a marker line after step N and wait for
    a signal there, so interruption tests kill or interrupt a run at a known step."""
    if os.environ.get(PAUSE_ENV) != str(step):
        return
    print(f"paused at step {step}", flush=True)
    while not stop.raised:  # SIGKILL ends the process; SIGINT sets the flag and saves
        time.sleep(0.02)


def check_finite(loss: float, step: int, last_good: Path | None = None) -> None:
    """Stop a diverged run with its step and the usual causes, instead of training on NaN."""
    if not math.isfinite(loss):
        kept = (f" The last good checkpoint is kept: {last_good}." if last_good else "")
        raise FloatingPointError(
            f"the training loss became {loss} at step {step}. Likely causes: a learning rate "
            "too high for this method (try --lr 10x smaller), or fp16 overflow (try "
            f"--mixed-precision bf16 or no).{kept}")


def weights_digest(model: nn.Module) -> str:
    """SHA-256 of the trainable weights, to compare processes or runs cheaply."""
    digest = hashlib.sha256()
    for name, tensor in sorted(trainable_state_dict(model).items()):
        digest.update(name.encode())
        digest.update(tensor.float().numpy().tobytes())
    return digest.hexdigest()


@torch.no_grad()
def evaluate_model(model: nn.Module, loader: DataLoader, task: TaskSpec,
                   accelerator=None) -> dict[str, float]:
    """Loss and every official metric of `task` on one evaluation split."""
    gather: Callable = accelerator.gather_for_metrics if accelerator else (lambda x: x)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    all_logits, all_labels, losses = [], [], []
    for batch in loader:
        batch = {k: v.to(device) for k, v in batch.items()}
        outputs = model(**batch)
        logits, labels = gather((outputs.logits.float(), batch["labels"]))
        all_logits.append(logits.cpu())
        all_labels.append(labels.cpu())
        losses.append((outputs.loss.float().item(), len(batch["labels"])))
    model.train(was_training)
    logits = torch.cat(all_logits).numpy()
    labels = torch.cat(all_labels).numpy()
    metrics = compute_metrics(task, predictions_from_logits(task, logits), labels)
    total = sum(n for _, n in losses)
    metrics["loss"] = sum(loss * n for loss, n in losses) / total
    return {k: round(float(v), 6) for k, v in metrics.items()}


def _epoch_line(entry: dict, task: TaskSpec) -> str:
    parts = [f"epoch {entry['epoch']} step {entry['step']}: train loss {entry['train_loss']:.4f}"]
    for split in task.eval_splits:
        parts.append(f"{split} " + " ".join(f"{k}={v:.4f}" for k, v in entry[split].items()))
    return " | ".join(parts)


# ---------------------------------------------------------------------------------------------
# The record


def build_record(run: PreparedRun, result: dict[str, Any]) -> dict[str, Any]:
    """The run record: results plus everything needed to know where they came from."""
    args, task = run.args, run.task
    main_split = task.eval_splits[0]
    train_time = max(result["train_time_s"], 1e-9)
    return {
        "task": task.name, "method": run.method.name, "model": args.model,
        "pretrained": run.backbone.pretrained, "profile": args.profile, "trainer": args.trainer,
        "data": {"source": run.data_source,
                 "train_examples": len(run.data["train"]),
                 "eval_examples": {s: len(run.data[s]) for s in task.eval_splits}},
        "main_metric": {"name": task.main_metric, "split": main_split,
                        "value": result["metrics"][main_split][task.main_metric]},
        "metrics": result["metrics"],
        "history": result["history"],
        "loss_log": result["loss_log"],
        "eval_log": result.get("eval_log", []),
        "params": run.params,
        "method_config": run.method.to_dict(),
        "steps": result["steps"], "epochs_run": result["epochs_run"],
        "wall_time_s": result["wall_time_s"], "train_time_s": result["train_time_s"],
        "train_examples_per_s": _rate(result["train_examples"], train_time),
        "train_tokens_per_s": _rate(result["train_tokens"], train_time),
        "peak_memory_mb": result["peak_memory_mb"],
        "device": result["device"], "num_processes": result["num_processes"],
        "rank_weight_digests": result.get("rank_weight_digests", []),
        "resumed_from": result.get("resumed_from"),
        "mixed_precision": result["mixed_precision"],
        "seed": args.seed, "command": command_line(), "args": asdict(args),
        "versions": library_versions(), "tokenizer_note": run.backbone.tokenizer_note,
        "finished_at": timestamp(), "cpu_count": os.cpu_count(),
    }


def _rate(count: int | None, seconds: float) -> float | None:
    return None if count is None else round(count / seconds, 2)


def _per_second(rate: float | None) -> str:
    return "ex/s n/a (resumed run)" if rate is None else f"{rate:.1f} ex/s"


def summary_line(record: dict[str, Any]) -> str:
    """One line that says what ran and how well, for the end of a run."""
    main = record["main_metric"]
    params = record["params"]
    tag = " [tiny profile: smoke run, not a result]" if record["profile"] == "tiny" else ""
    return (f"{record['task']} | {record['method']} | {record['model']}: {main['split']} "
            f"{main['name']}={main['value']:.4f} | trainable {params['trainable']:,} of "
            f"{params['total']:,} ({params['trainable_percent']:.2f}%) | "
            f"{record['wall_time_s']:.1f} s, {_per_second(record['train_examples_per_s'])} | "
            f"record: {record['args']['output_dir']}/record.json{tag}")

