"""The library's training loop: plain PyTorch with `accelerate` for devices and DDP, as small steps
over one `LoopState` that a checkpoint saves and a resume restores exactly.

AdamW (fused), linear warmup and decay, gradient clipping, length-grouped batches, mixed
precision (torch autocast, a gradient scaler for fp16), an evaluation every epoch (and every
`eval_every_steps`), a checkpoint every `save_every_steps`, and Ctrl-C, SIGTERM or SIGHUP turned
into "save, then stop" (`d2l_utils.signals`).
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field, fields
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn as nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm
from transformers import get_linear_schedule_with_warmup

from ..arguments import RunArguments
from ..precision import resolve_precision
from ..preprocessing import LengthGroupedBatchSampler, eval_dataloader, make_collator
from ..signals import StopFlag, Stopped, by_signal, pause_for_tests
from .checkpoints import (
    apply_checkpoint,
    check_same_data,
    checkpoint_root,
    find_resumable,
    latest_checkpoint,
    resume_command,
    save_checkpoint,
)
from .clipping import clip_by_group_, clip_groups
from .evaluate import epoch_line, evaluate_model
from .prepare import PreparedRun
from .record import TrainResult, command_line, device_description, peak_memory_mb
from .saving import trainable_state_dict


@dataclass
class LoopState:
    """The loop's counters and logs: all a checkpoint needs besides weights, optimizer and RNGs."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # batches of `epoch` already trained (a mid-epoch resume skips them)
    train_time: float = 0.0  # seconds of training, evaluations excluded
    examples: int = 0
    tokens: int = 0
    window_loss: float = 0.0  # summed loss since the last loss-log entry
    window_start: int = 0
    epoch_loss: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)
    loss_log: list[Any] = field(default_factory=list)
    eval_log: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def from_dict(cls, saved: dict[str, Any]) -> LoopState:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in saved.items() if k in known})


class TrainingInterrupted(Stopped):
    """A stop signal during training: a checkpoint was saved; the message says how to resume."""

    @classmethod
    def at(cls, step: int, signum: int, saved: Path | None) -> TrainingInterrupted:
        """Stopped after `step`; `saved` is the checkpoint (None: another process saved it)."""
        how = f"interrupted{by_signal(signum)} at step {step}"
        if saved is not None:
            how += (f"; checkpoint saved in {saved}. Resume with:\n"
                    f"  {resume_command(command_line())}")
        return cls(how, signum)


def make_optimizer(model: nn.Module, args: RunArguments, total_steps: int, fused: bool = True):
    """(AdamW, its linear warmup-and-decay schedule): the loop's and fastNLP's, the same. The
    trainable parameters in two groups: no weight decay on biases and LayerNorm weights."""
    params = [p for p in model.parameters() if p.requires_grad]
    groups = [{"params": [p for p in params if p.ndim >= 2], "weight_decay": args.weight_decay},
              {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0}]
    optimizer = torch.optim.AdamW(groups, lr=args.lr, eps=args.adam_epsilon,
                                  fused=fused)  # one kernel, not a loop
    return optimizer, get_linear_schedule_with_warmup(
        optimizer, num_warmup_steps=args.num_warmup_steps(total_steps),
        num_training_steps=total_steps)


def make_loaders(run: PreparedRun, collate: Callable, generator: torch.Generator | None = None
                 ) -> tuple[DataLoader, dict[str, DataLoader]]:
    """Length-grouped shuffled training batches (the labels keep them mixed where length goes
    with the label) and one length-ordered loader per evaluation split."""
    args, train = run.args, run.data["train"]
    sampler = LengthGroupedBatchSampler(train["length"], args.batch_size, seed=args.seed,
                                        group_by_length=args.group_by_length,
                                        labels=train["labels"])
    return (DataLoader(train, batch_sampler=sampler, collate_fn=collate, generator=generator),
            {split: eval_dataloader(run.data[split], args.eval_batch_size, collate)
             for split in run.task.eval_splits})


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


class Loop:
    """One run of the library loop: `__init__` sets everything up, `run()` trains."""

    def __init__(self, run: PreparedRun) -> None:
        from accelerate import Accelerator
        from accelerate.state import is_initialized

        self.run_, self.args, self.task = run, run.args, run.task
        self.predictions: dict[str, dict[str, list]] = {}  # filled by `evaluate`
        args = run.args
        # Precision is the loop's, not accelerate's (which fixes one for the whole process, and
        # an earlier Trainer run in it may have): an autocast around the model's own forward,
        # inside any autocast accelerate adds, so it wins, and a notebook may train in fp32 and
        # then in bf16. A fresh accelerate state gets none (`accelerate launch` flags aside).
        self.precision = resolve_precision(args.mixed_precision)
        self.accelerator = Accelerator(mixed_precision=None if is_initialized() else "no")
        self.device = self.accelerator.device
        dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)
        run.model.forward = torch.autocast(self.device.type, dtype=dtype,
                                           enabled=dtype is not None)(run.model.forward)
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        collate = make_collator(run.tokenizer,
                                pad_to_multiple_of=8 if self.device.type == "cuda" else None)
        # Own generator: starting an epoch must not draw from the global RNG (dropout), or a
        # resumed run would diverge from an uninterrupted one.
        train_loader, eval_loaders = make_loaders(
            run, collate, torch.Generator().manual_seed(args.seed))
        self.model, self.train_loader = self.accelerator.prepare(run.model, train_loader)
        self.eval_loaders = {k: self.accelerator.prepare(v) for k, v in eval_loaders.items()}
        self.steps_per_epoch = len(self.train_loader)
        self.total_steps = args.max_steps or math.ceil(args.epochs * self.steps_per_epoch)
        self.num_epochs = math.ceil(self.total_steps / self.steps_per_epoch)
        # not prepared: the scheduler steps once per optimizer step, the scaler is the loop's
        self.optimizer, self.scheduler = make_optimizer(
            self.model, args, self.total_steps, fused=self.device.type in ("cuda", "cpu"))
        # clipped separately (head and pooler | the method), so the untrained head's large
        # gradient does not scale the method's steps down (training/clipping.py)
        self.clip_groups = clip_groups(self.model)
        self.run_args = asdict(args)
        self.state = LoopState()
        self.resumed_from: Path | None = None
        self.data_changed: list[str] = []  # allowed by --allow-data-change on resume
        self.bar: tqdm | None = None
        self._tick = 0.0  # start of the current timed stretch

    # -- setup ---------------------------------------------------------------------------------

    def say(self, text: str) -> None:
        if self.accelerator.is_local_main_process:
            print(text, flush=True)

    def restore(self) -> None:
        """With `--resume`, continue from the newest checkpoint of this command, if any."""
        if not self.args.resume:
            return
        model = self.accelerator.unwrap_model(self.model)
        # the newest checkpoint whose files are whole (damaged ones are skipped, and named)
        contents = find_resumable(self.args.output_dir, self.run_args, model, self.say)
        if contents is None:
            self.say(f"no checkpoint in {checkpoint_root(self.args.output_dir)}; starting from "
                     "scratch")
            return
        latest = contents.path
        self.data_changed = check_same_data(latest, contents.state.get("data"),
                                            self.run_.data_fingerprint,
                                            self.args.allow_data_change, self.say)
        saved = apply_checkpoint(contents, model, self.optimizer, self.scheduler, self.scaler)
        self.state, self.resumed_from = LoopState.from_dict(saved), latest
        self.say(f"resuming from {latest} (step {self.state.step} of {self.total_steps})")

    # -- the steps -----------------------------------------------------------------------------

    def train_step(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Forward, backward, clip, optimizer and scheduler step; returns the detached loss."""
        loss = self.model(**batch).loss
        self.scaler.scale(loss).backward()  # fp16: scaled; otherwise as is
        if self.args.max_grad_norm > 0:  # on the unscaled gradients
            clip_by_group_(self.clip_groups, self.args.max_grad_norm,
                           partial(self.scaler.unscale_, self.optimizer))
        self.scaler.step(self.optimizer)  # fp16: skipped on inf/NaN gradients
        self.scaler.update()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        return loss.detach().float()

    def evaluate(self) -> dict[str, dict[str, float]]:
        """Every split's metrics; the per-example predictions of the latest evaluation are kept
        for the record (after the last step: the final weights')."""
        self.predictions = {split: {} for split in self.eval_loaders}
        return {split: evaluate_model(self.model, loader, self.task, self.accelerator,
                                      keep=self.predictions[split])
                for split, loader in self.eval_loaders.items()}

    def checkpoint(self) -> Path | None:
        """Save the state now (all processes wait for the main one to finish writing). A
        `WriteError` (a full disk) gets what is kept and how to go on in `train`."""
        saved = None
        snapshot = {**asdict(self.state),
                    "train_time": self.state.train_time + time.perf_counter() - self._tick,
                    "data": self.run_.data_fingerprint}  # a resume checks it
        if self.accelerator.is_main_process:
            saved = save_checkpoint(self.args.output_dir, self.state.step,
                                    self.accelerator.unwrap_model(self.model), self.optimizer,
                                    self.scheduler, self.scaler, snapshot, self.run_args,
                                    not self.run_.backbone.pretrained, self.args.keep_checkpoints)
        self.accelerator.wait_for_everyone()
        return saved

    def train_epoch(self, epoch: int, stop: StopFlag, sums: dict[str, torch.Tensor]) -> None:
        """Train the batches of one epoch (skipping those a resumed run already trained)."""
        state = self.state
        self.model.train()
        self.train_loader.set_epoch(epoch)  # the batch order depends on (seed, epoch) only
        skip = state.batch_in_epoch if epoch == state.epoch else 0
        loader = (self.accelerator.skip_first_batches(self.train_loader, skip) if skip
                  else self.train_loader)
        sums["epoch_loss"].fill_(state.epoch_loss if skip else 0.0)
        state.batch_in_epoch = skip
        self._tick = time.perf_counter()
        for batch in loader:
            if state.step >= self.total_steps:  # resumed from the last step's checkpoint
                break
            loss = self.train_step(batch)
            state.step += 1
            state.batch_in_epoch += 1
            sums["epoch_loss"] += loss
            sums["window_loss"] += loss
            sums["examples"] += batch["input_ids"].shape[0]
            sums["tokens"] += batch["attention_mask"].sum()
            self.bar.update(1)
            pause_for_tests(state.step, stop)
            self.after_step(epoch, stop, sums)
            if state.step >= self.total_steps:
                break
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        state.train_time += time.perf_counter() - self._tick

    def after_step(self, epoch: int, stop: StopFlag, sums: dict[str, torch.Tensor]) -> None:
        """Log the loss, save a checkpoint, stop on Ctrl-C or evaluate, as each is due."""
        args, state, step = self.args, self.state, self.state.step
        logging_now = step % args.log_every == 0 or step == self.total_steps
        saving_now = bool(args.save_every_steps) and step % args.save_every_steps == 0
        if logging_now or saving_now or stop.raised:
            mean = (sums["window_loss"] / (step - state.window_start)).item()
            check_finite(mean, step, latest_checkpoint(args.output_dir))
        if logging_now:
            state.loss_log.append((step, round(mean, 6)))
            sums["window_loss"].zero_()
            state.window_start = step
            self.bar.set_postfix(loss=f"{mean:.4f}",
                                 lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
        if saving_now or stop.raised:
            state.epoch = epoch
            for key, value in sums.items():  # examples and tokens as ints, the losses as floats
                setattr(state, key, value.item())
            saved = self.checkpoint()
        if stop.raised:
            self.bar.close()
            raise TrainingInterrupted.at(step, stop.signum, saved)
        if (args.eval_every_steps and step % args.eval_every_steps == 0
                and state.batch_in_epoch < self.steps_per_epoch and step < self.total_steps):
            paused = time.perf_counter()  # evaluation time is not training time
            state.eval_log.append({
                "step": step,
                "epoch": round(epoch + state.batch_in_epoch / self.steps_per_epoch, 4),
                **self.evaluate()})
            self.model.train()
            self._tick += time.perf_counter() - paused

    def end_epoch(self, epoch: int, sums: dict[str, torch.Tensor]) -> None:
        """Evaluate every split and append the epoch to the history."""
        state = self.state
        state.history.append({
            "epoch": round(state.step / self.steps_per_epoch, 4), "step": state.step,
            "train_loss": round((sums["epoch_loss"] / max(state.batch_in_epoch, 1)).item(), 6),
            **self.evaluate()})
        state.epoch, state.batch_in_epoch, state.epoch_loss = epoch + 1, 0, 0.0
        if self.args.progress and self.accelerator.is_local_main_process:
            self.bar.write(epoch_line(state.history[-1], self.task))

    # -- the whole run -------------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train to `total_steps` (resuming first when asked) and report the result."""
        self.restore()
        args, state = self.args, self.state
        sums = {name: torch.tensor(getattr(state, name), device=self.device, dtype=dtype)
                for name, dtype in [("examples", torch.long), ("tokens", torch.long),
                                    ("window_loss", torch.float32), ("epoch_loss", torch.float32)]}
        self.bar = tqdm(total=self.total_steps, initial=state.step,
                        desc=f"{self.task.name} {self.run_.method.name}", unit="step",
                        disable=not (args.progress and self.accelerator.is_local_main_process))
        try:
            with StopFlag() as stop:
                for epoch in range(state.epoch, self.num_epochs):
                    self.train_epoch(epoch, stop, sums)
                    self.end_epoch(epoch, sums)
                    if state.step >= self.total_steps:
                        break
            self.bar.close()
            return self.result(sums)
        finally:  # the model's own forward again, without this run's autocast (and accelerate's)
            vars(self.run_.model).pop("forward", None)

    def result(self, sums: dict[str, torch.Tensor]) -> TrainResult:
        from accelerate.utils import gather_object

        acc, state = self.accelerator, self.state
        unwrapped = acc.unwrap_model(self.model)
        # One digest per process: under DDP they must all be equal (the ranks stayed in sync).
        digests = gather_object([weights_digest(unwrapped)])
        acc.wait_for_everyone()
        return TrainResult(
            history=state.history, loss_log=state.loss_log, eval_log=state.eval_log,
            steps=state.step, epochs_run=round(state.step / self.steps_per_epoch, 4),
            train_time_s=round(state.train_time, 3),
            train_examples=acc.reduce(sums["examples"], reduction="sum").item(),
            train_tokens=acc.reduce(sums["tokens"], reduction="sum").item(),
            device=device_description(self.device), num_processes=acc.num_processes,
            mixed_precision=self.precision,
            peak_memory_mb=round(peak_memory_mb(self.device), 1),
            resumed_from=str(self.resumed_from) if self.resumed_from else None,
            data_changed=self.data_changed, predictions=self.predictions,
            rank_weight_digests=digests, is_main_process=acc.is_main_process, model=unwrapped)


def train_with_loop(run: PreparedRun) -> TrainResult:
    """Train `run.model` with the library loop; checkpoints and resume as the options say."""
    return Loop(run).run()
