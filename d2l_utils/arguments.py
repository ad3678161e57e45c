"""Typed run options: the CLI, the notebooks and the tests all build the same `RunArguments`.

Fields left at None take a default from the profile (`tiny` or `real`) or from the method
(learning rate), so `RunArguments(task="sst2", method="lora", tiny=True)` is a complete run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Literal

from .backbones import LR_SCALE
from .methods import METHODS, MethodConfig, method_config
from .tasks import TASKS, TaskSpec, get_task

PROFILES: dict[str, dict] = {
    # a few seconds on a laptop CPU, offline: the built-in fixtures and a 2-layer random BERT
    "tiny": {"model": "tiny-bert", "epochs": 2.0, "batch_size": 8, "max_seq_length": 64},
    # the real thing: hub data and bert-base-uncased; batch 16 and 3 epochs are in the BERT
    # paper grid (on real SST-2 with MiniLM, batch 16 beat 32 for the same epoch: 0.846 vs 0.825)
    "real": {"model": "bert-base-uncased", "epochs": 3.0, "batch_size": 16,
             "max_seq_length": 128},
}


def _opt(help: str, **kwargs) -> dict:
    return {"metadata": {"help": help, **kwargs.pop("metadata", {})}, **kwargs}


@dataclass
class RunArguments:
    """Everything that defines one training run."""

    # --- data
    task: str = field(**_opt("GLUE task or snli", metadata={"choices": list(TASKS)}))
    data_dir: str | None = field(default=None, **_opt(
        "folder in the official GLUE layout (e.g. DIR/SST-2/train.tsv); default: the hub"))
    tiny: bool = field(default=False, **_opt(
        "tiny profile: built-in fixtures, a tiny model, a few steps (offline, seconds)"))
    max_train_samples: int | None = field(default=None, **_opt("seeded subset of train"))
    max_eval_samples: int | None = field(default=None, **_opt("seeded subset of each eval split"))
    max_seq_length: int | None = field(default=None, **_opt("truncate longer inputs (128)"))
    # --- model and method
    model: str | None = field(default=None, **_opt(
        "hub id, local folder, minilm-l6 (pretrained, offline) or tiny-bert (random)"))
    random_init: bool = field(default=False, **_opt(
        "random weights from the shipped config (bert-base-uncased, roberta-base, "
        "distilbert-base-uncased): for parameter counts and throughput, not accuracy"))
    method: str = field(default="full", **_opt("fine-tuning method",
                                               metadata={"choices": list(METHODS)}))
    backend: Literal["peft", "adapters"] | None = field(default=None, **_opt(
        "library for lora (default peft) and prefix (default adapters)"))
    trainable_layers: int = field(default=1, **_opt("freeze: encoder layers left trainable"))
    r: int = field(default=8, **_opt("lora: rank"))
    alpha: int = field(default=16, **_opt("lora: scaling alpha (scale = alpha / r)"))
    dropout: float = field(default=0.1, **_opt("lora: dropout on the LoRA input"))
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"], **_opt(
        "lora: projections that get LoRA matrices"))
    prefix_length: int = field(default=30, **_opt("prefix: number of prefix vectors"))
    num_virtual_tokens: int = field(default=20, **_opt("ptuning-v2 / prompt-tuning: prompt "
                                                       "length"))
    head: Literal["train", "bias", "frozen"] | None = field(default=None, **_opt(
        "how the classification head trains (default: train; bitfit: bias)"))
    # --- optimisation
    trainer: Literal["loop", "hf", "fastnlp"] = field(default="loop", **_opt(
        "loop: the library's PyTorch loop; hf: the transformers Trainer; fastnlp: the fastNLP "
        "Trainer (accuracy tasks, whole epochs)"))
    train_batches_per_epoch: int | None = field(default=None, **_opt(
        "fastnlp: train at most this many batches of each epoch"))
    epochs: float | None = field(default=None, **_opt("training epochs (3; tiny 2)"))
    max_steps: int | None = field(default=None, **_opt("stop after this many optimizer steps"))
    batch_size: int | None = field(default=None, **_opt("training batch size (16; tiny 8)"))
    eval_batch_size: int | None = field(default=None, **_opt("default: 2 x batch size"))
    lr: float | None = field(default=None, **_opt(
        "peak learning rate (default: per method, x5 for small backbones such as minilm-l6)"))
    warmup_ratio: float = field(default=0.1, **_opt("share of steps with linear warmup"))
    warmup_steps: int | None = field(default=None, **_opt(
        "linear warmup over this many steps (overrides --warmup-ratio)"))
    weight_decay: float = field(default=0.01, **_opt("AdamW weight decay (not on biases/LN)"))
    adam_epsilon: float = field(default=1e-6, **_opt("AdamW epsilon"))
    max_grad_norm: float = field(default=1.0, **_opt("gradient clipping (0 disables)"))
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = field(default="auto", **_opt(
        "auto: bf16 (or fp16) on GPU, fp32 on CPU"))
    group_by_length: bool = field(default=True, **_opt(
        "batch examples of similar length together (less padding)"))
    seed: int = field(default=42, **_opt("seed for initialisation, data order and dropout"))
    output_dir: str | None = field(default=None, **_opt("default: runs/TASK-METHOD-MODEL"))
    eval_every_steps: int | None = field(default=None, **_opt(
        "also evaluate every N optimizer steps (for curves; the time is not counted as training)"))
    log_every: int = field(default=20, **_opt("steps between loss log entries"))
    save_model: bool = field(default=True, **_opt("save trainable weights (safetensors)"))
    save_every_steps: int | None = field(default=None, **_opt(
        "write a resumable checkpoint every N optimizer steps"))
    keep_checkpoints: int = field(default=2, **_opt("how many recent checkpoints to keep"))
    resume: bool = field(default=False, **_opt(
        "continue from the newest complete checkpoint in --output-dir (mid-epoch too)"))
    progress: bool = field(default=True, **_opt("show progress bars"))

    def __post_init__(self) -> None:
        task = self.task_spec  # validates the name early
        if self.trainer == "fastnlp":
            if task.main_metric != "accuracy":
                raise ValueError(f"the fastNLP trainer reports accuracy; {task.name}'s main "
                                 f"metric is {task.main_metric}: train it with the library loop "
                                 "instead")
            if self.max_steps:
                raise ValueError("the fastNLP trainer trains whole epochs: use --epochs (and "
                                 "--train-batches-per-epoch) instead of --max-steps")

    @property
    def profile(self) -> str:
        return "tiny" if self.tiny else "real"

    @property
    def task_spec(self) -> TaskSpec:
        return get_task(self.task)

    def num_warmup_steps(self, total_steps: int) -> int:
        """Warmup length: `warmup_steps` when given, else `warmup_ratio` of the run."""
        if self.warmup_steps is not None:
            return min(self.warmup_steps, total_steps)
        return round(self.warmup_ratio * total_steps)

    def method_config(self) -> MethodConfig:
        """The method's config object (validated) built from the relevant options."""
        return method_config(self.method, **dataclasses.asdict(self))

    def resolved(self) -> "RunArguments":
        """A copy with every None default filled in from the profile and the method."""
        values = dataclasses.asdict(self)
        for key, default in PROFILES[self.profile].items():
            if values.get(key) is None:
                values[key] = default
        if values["lr"] is None:
            values["lr"] = METHODS[self.method].default_lr * LR_SCALE.get(values["model"], 1.0)
        if values["backend"] is None:
            values["backend"] = self.method_config().backend
        if values["eval_batch_size"] is None:
            values["eval_batch_size"] = 2 * values["batch_size"]
        if values["output_dir"] is None:
            model = values["model"].rstrip("/").split("/")[-1]
            values["output_dir"] = f"runs/{self.task}-{self.method}-{model}"
        return RunArguments(**values)


@dataclass
class EvaluateArguments:
    """Options of `python -m d2l_utils evaluate`."""

    checkpoint: str = field(**_opt("output directory of a finished run"))
    task: str | None = field(default=None, **_opt("default: the task the run trained on",
                                                  metadata={"choices": list(TASKS)}))
    data_dir: str | None = field(default=None, **_opt("folder in the official GLUE layout"))
    tiny: bool = field(default=False, **_opt("evaluate on the built-in fixtures"))
    max_eval_samples: int | None = field(default=None, **_opt("seeded subset of each split"))
    batch_size: int = field(default=64, **_opt("evaluation batch size"))
