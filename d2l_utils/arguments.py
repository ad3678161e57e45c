"""Typed run options: the CLI, the notebooks and the tests all build the same `RunArguments`.

Fields left at None take a default from the profile (`tiny` or `real`) or from the method
(learning rate), so `RunArguments(task="sst2", method="lora", tiny=True)` is a complete run.

Each field's metadata is the one description of its option: the help text, and what a valid
value is (`bounds`, `nonempty`, options it `excludes`, names other tools give it). `check_options`
enforces it whenever the dataclass is built (from Python or the command line), so a bad value
fails at once with one line naming the option, the value and the valid range (`OptionError`,
exit code 2 in the CLI), never later inside torch or numpy.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import numbers
import os
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from .backbones import LR_SCALE
from .methods import METHODS, MethodConfig, method_config
from .tasks import TASKS, TaskSpec, get_task

PROFILES: dict[str, dict] = {
    # a few seconds on a laptop CPU, offline: the built-in fixtures and a 2-layer random BERT
    "tiny": {"model": "tiny-bert", "epochs": 2.0, "batch_size": 8, "max_seq_length": 64},
    # a laptop's budget on real data: the pretrained MiniLM-L6 (D2L_PROFILE=cpu)
    "cpu": {"model": "minilm-l6", "epochs": 3.0, "batch_size": 16, "max_seq_length": 128},
    # the real thing (records before the cpu/gpu split say "real"): hub data and
    # bert-base-uncased; batch 16 and 3 epochs are in the BERT paper grid (on real SST-2 with
    # MiniLM, batch 16 beat 32 for the same epoch: 0.846 vs 0.825)
    "gpu": {"model": "bert-base-uncased", "epochs": 3.0, "batch_size": 16,
            "max_seq_length": 128},
}
OUTPUT_ROOT_ENV = "D2L_OUTPUT_DIR"  # where runs go by default (runs/TASK-METHOD-MODEL)
MIN_SEQ_LENGTH = 8  # room for the special tokens and a few word pieces of each sentence


DRIVE = Path("/content/drive/MyDrive")  # Google Drive, when mounted in Colab
DRIVE_RUNS = DRIVE / "bert-glue-book" / "runs"


def runs_root() -> str:
    """The folder default output folders go under: `$D2L_OUTPUT_DIR`; else, on Colab with
    Google Drive mounted, a folder on Drive (checkpoints there survive a recycled runtime,
    `/content` does not); else `runs`. Test harnesses point it at a fresh temporary folder."""
    configured = os.environ.get(OUTPUT_ROOT_ENV, "").strip()
    if configured:
        return configured
    return str(DRIVE_RUNS) if DRIVE.is_dir() else "runs"


class OptionError(ValueError):
    """A bad option value or combination; the message names the option, the value and what is
    valid. The CLI prints it as one line and exits with code 2."""


@dataclass(frozen=True)
class Bounds:
    """The valid range of a numeric option; `None` leaves a side open-ended, `open_low` and
    `open_high` exclude the end itself."""

    low: float | None = None
    high: float | None = None
    open_low: bool = False
    open_high: bool = False

    def __contains__(self, value: float) -> bool:
        if self.low is not None and (value <= self.low if self.open_low else value < self.low):
            return False
        return self.high is None or (value < self.high if self.open_high else value <= self.high)

    def __str__(self) -> str:
        low = high = None
        if self.low is not None:
            low = f"{'greater than' if self.open_low else 'at least'} {_num(self.low)}"
        if self.high is not None:
            high = f"{'less than' if self.open_high else 'at most'} {_num(self.high)}"
        if low and high:
            if not (self.open_low or self.open_high):
                return f"between {_num(self.low)} and {_num(self.high)}"
            return f"{low} and {high}"
        return low or high or "any value"


def _num(value: float) -> str:
    """A number as people write it: 0 not 0.0, 4294967295 not 4.29e+09, 1e-05 as is."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return format(value, "g") if isinstance(value, float) else str(value)


POSITIVE = Bounds(0, open_low=True)
AT_LEAST_0, AT_LEAST_1 = Bounds(0), Bounds(1)
FRACTION = Bounds(0, 1)
# The option description keys that are ours, not argparse's (the CLI's parser strips them).
CHECK_KEYS = ("bounds", "nonempty", "excludes", "known_as")


def _opt(help: str, bounds: Bounds | None = None, nonempty: bool = False,
         excludes: dict[str, str] | None = None, known_as: tuple[str, ...] = (),
         **kwargs) -> dict:
    """A field's description: help text plus what a valid value is.

    `bounds`: the numeric range; `nonempty`: a string or list must not be empty; `excludes`:
    {other option: why} for options that cannot be combined with this one; `known_as`: the names
    other tools give this option (`--learning-rate`), offered as "did you mean" for them."""
    metadata = {"help": help, **kwargs.pop("metadata", {})}
    for key, value in [("bounds", bounds), ("nonempty", nonempty), ("excludes", excludes),
                       ("known_as", known_as)]:
        if value:
            metadata[key] = value
    return {"metadata": metadata, **kwargs}


def option_name(name: str) -> str:
    """The command-line spelling of a field: `max_seq_length` -> `--max-seq-length`."""
    return "--" + name.replace("_", "-")


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return _num(value)
    return str(value)


@functools.cache
def _type_hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """(the type inside `X | None`, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def check_value(name: str, hint: Any, value: Any, meta: typing.Mapping[str, Any]) -> None:
    """Raise `OptionError` unless `value` is a valid value of the option described by the
    field's type `hint` and `meta`data."""
    option = option_name(name)
    hint, optional = _unwrap_optional(hint)
    if value is None:
        if optional:
            return
        raise OptionError(f"{option} is required")
    origin = typing.get_origin(hint)
    if origin is Literal:
        choices = typing.get_args(hint)
        if value not in choices:
            raise OptionError(f"{option} must be one of {', '.join(map(str, choices))}, got "
                          f"{_show(value)}")
        return
    bounds: Bounds | None = meta.get("bounds")
    if hint is bool:
        if not isinstance(value, bool):
            raise OptionError(f"{option} must be true or false, got {_show(value)}")
    elif hint is int:
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise OptionError(f"{option} must be an integer" + (f" {bounds}" if bounds else "")
                              + f", got {_show(value)}")
    elif hint is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise OptionError(f"{option} must be a number" + (f" {bounds}" if bounds else "")
                              + f", got {_show(value)}")
        if not math.isfinite(value):
            raise OptionError(f"{option} must be a finite number"
                              + (f" {bounds}" if bounds else "") + f", got {value}")
    elif hint is str:
        if not isinstance(value, str):
            raise OptionError(f"{option} must be a string, got {_show(value)}")
        if meta.get("nonempty") and not value.strip():
            raise OptionError(f"{option} must not be empty, got {value!r}")
    elif origin is list:
        if (not isinstance(value, (list, tuple))
                or not all(isinstance(v, str) and v.strip() for v in value)):
            raise OptionError(f"{option} must be a list of names, got {_show(value)}")
        if meta.get("nonempty") and not value:
            raise OptionError(f"{option}: needs at least one value")
    if bounds is not None and value not in bounds:
        raise OptionError(f"{option} must be {bounds}, got {_show(value)}")


def _is_set(value: Any) -> bool:
    return value is not None and value is not False


def check_options(options: Any) -> None:
    """Check every field of a dataclass of options against its description (type, range,
    emptiness, excluded combinations); the first problem raises `OptionError`."""
    hints = _type_hints(type(options))
    for f in dataclasses.fields(options):
        check_value(f.name, hints[f.name], getattr(options, f.name), f.metadata)
    for f in dataclasses.fields(options):
        for other, why in f.metadata.get("excludes", {}).items():
            if _is_set(getattr(options, f.name)) and _is_set(getattr(options, other)):
                raise OptionError(f"{option_name(f.name)} and {option_name(other)} cannot be "
                                  f"used together: {why}")


@dataclass
class RunArguments:
    """Everything that defines one training run."""

    # --- data
    task: str = field(**_opt("GLUE task or snli", metadata={"choices": list(TASKS)}))
    data_dir: str | None = field(default=None, **_opt(
        "folder in the official GLUE layout (e.g. DIR/SST-2/train.tsv); default: the hub",
        nonempty=True, excludes={"tiny": "--tiny reads the built-in fixtures, not a folder; "
                                 "drop one of them"}))
    tiny: bool = field(default=False, **_opt(
        "tiny profile: built-in fixtures, a tiny model, a few steps (offline, seconds)"))
    max_train_samples: int | None = field(default=None, **_opt(
        "seeded subset of train", bounds=AT_LEAST_1))
    max_eval_samples: int | None = field(default=None, **_opt(
        "seeded subset of each eval split", bounds=AT_LEAST_1))
    max_seq_length: int | None = field(default=None, **_opt(
        "truncate longer inputs (128); at most the model's position limit",
        bounds=Bounds(MIN_SEQ_LENGTH), known_as=("max_length", "max_len", "seq_len",
                                                 "max_seq_len")))
    # --- model and method
    model: str | None = field(default=None, **_opt(
        "hub id, local folder, minilm-l6 (pretrained, offline) or tiny-bert (random)",
        nonempty=True, known_as=("model_name_or_path", "model_name", "backbone")))
    random_init: bool = field(default=False, **_opt(
        "random weights from the shipped config (bert-base-uncased, roberta-base, "
        "distilbert-base-uncased): for parameter counts and throughput, not accuracy"))
    method: str = field(default="full", **_opt("fine-tuning method",
                                               metadata={"choices": list(METHODS)}))
    backend: Literal["peft", "adapters", "hf"] | None = field(default=None, **_opt(
        "library for lora (default peft) and prefix (default adapters); hf: transformers "
        "alone (the other methods)"))
    trainable_layers: int = field(default=1, **_opt(
        "freeze: encoder layers left trainable", bounds=AT_LEAST_0))
    r: int = field(default=8, **_opt("lora: rank", bounds=AT_LEAST_1,
                                     known_as=("lora_r", "rank")))
    alpha: int = field(default=16, **_opt("lora: scaling alpha (scale = alpha / r)",
                                          bounds=AT_LEAST_1, known_as=("lora_alpha",)))
    dropout: float = field(default=0.1, **_opt(
        "lora: dropout on the LoRA input", bounds=Bounds(0, 1, open_high=True),
        known_as=("lora_dropout",)))
    target_modules: list[str] = field(default_factory=lambda: ["query", "value"], **_opt(
        "lora: projections that get LoRA matrices", nonempty=True))
    prefix_length: int = field(default=30, **_opt("prefix: number of prefix vectors",
                                                  bounds=AT_LEAST_1))
    num_virtual_tokens: int = field(default=20, **_opt(
        "ptuning-v2 / prompt-tuning: prompt length", bounds=AT_LEAST_1))
    head: Literal["train", "bias", "frozen"] | None = field(default=None, **_opt(
        "how the classification head trains (default: train; bitfit: bias)"))
    pooler: Literal["train", "frozen"] | None = field(default=None, **_opt(
        "BERT's pooler (dense + tanh on [CLS], not part of the head): train or freeze it on top "
        "of the method (default: it trains wherever the whole head trains; with a bias-only or "
        "frozen head, as the method sets it)"))
    # --- optimisation
    trainer: Literal["loop", "hf", "fastnlp"] = field(default="loop", **_opt(
        "loop: the library's PyTorch loop; hf: the transformers Trainer; fastnlp: the fastNLP "
        "Trainer (accuracy tasks, whole epochs)"))
    train_batches_per_epoch: int | None = field(default=None, **_opt(
        "fastnlp: train at most this many batches of each epoch", bounds=AT_LEAST_1))
    epochs: float | None = field(default=None, **_opt(
        "training epochs (3; tiny 2)", bounds=POSITIVE,
        known_as=("num_train_epochs", "num_epochs", "epoch", "n_epochs")))
    max_steps: int | None = field(default=None, **_opt(
        "stop after this many optimizer steps", bounds=AT_LEAST_1,
        known_as=("num_steps", "steps", "max_train_steps")))
    batch_size: int | None = field(default=None, **_opt(
        "training batch size (16; tiny 8)", bounds=AT_LEAST_1,
        known_as=("per_device_train_batch_size", "train_batch_size", "bs")))
    eval_batch_size: int | None = field(default=None, **_opt(
        "default: 2 x batch size", bounds=AT_LEAST_1,
        known_as=("per_device_eval_batch_size",)))
    lr: float | None = field(default=None, **_opt(
        "peak learning rate (default: per method, x5 for small backbones such as minilm-l6)",
        bounds=POSITIVE, known_as=("learning_rate", "learningrate", "eta")))
    warmup_ratio: float = field(default=0.1, **_opt(
        "share of steps with linear warmup", bounds=FRACTION, known_as=("warmup",)))
    warmup_steps: int | None = field(default=None, **_opt(
        "linear warmup over this many steps (overrides --warmup-ratio)", bounds=AT_LEAST_0))
    weight_decay: float = field(default=0.01, **_opt(
        "AdamW weight decay (not on biases/LN)", bounds=AT_LEAST_0, known_as=("wd",)))
    adam_epsilon: float = field(default=1e-6, **_opt("AdamW epsilon", bounds=POSITIVE,
                                                     known_as=("eps", "epsilon")))
    max_grad_norm: float = field(default=1.0, **_opt(
        "gradient clipping (0 disables); the library loop clips the head (with the pooler) and "
        "the method's parameters separately, each to this norm; --trainer hf and fastnlp clip "
        "one global norm", bounds=AT_LEAST_0, known_as=("clip", "grad_clip")))
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = field(default="auto", **_opt(
        "auto: bf16 (or fp16) on GPU, fp32 on CPU; bf16 also on a CPU with native bf16",
        known_as=("fp16", "bf16", "precision")))
    group_by_length: bool = field(default=True, **_opt(
        "batch examples of similar length together (less padding)"))
    seed: int = field(default=42, **_opt(
        "seed for initialisation, data order and dropout", bounds=Bounds(0, 2**32 - 1)))
    output_dir: str | None = field(default=None, **_opt(
        f"default: ${OUTPUT_ROOT_ENV} (else runs)/TASK-METHOD-MODEL", nonempty=True,
        known_as=("out", "output", "outdir", "run_dir")))
    eval_every_steps: int | None = field(default=None, **_opt(
        "also evaluate every N optimizer steps (for curves; the time is not counted as training)",
        bounds=AT_LEAST_1, known_as=("eval_steps",)))
    log_every: int = field(default=20, **_opt("steps between loss log entries",
                                              bounds=AT_LEAST_1,
                                              known_as=("logging_steps", "log_steps")))
    save_model: bool = field(default=True, **_opt("save trainable weights (safetensors)"))
    save_every_steps: int | None = field(default=None, **_opt(
        "write a resumable checkpoint every N optimizer steps", bounds=AT_LEAST_1,
        known_as=("save_steps", "checkpoint_every")))
    keep_checkpoints: int = field(default=2, **_opt(
        "how many recent checkpoints to keep", bounds=AT_LEAST_1,
        known_as=("save_total_limit",)))
    resume: bool = field(default=False, **_opt(
        "continue from the newest complete checkpoint in --output-dir (mid-epoch too)",
        excludes={"overwrite": "--resume continues the run in --output-dir, --overwrite "
                               "deletes it"},
        known_as=("resume_from_checkpoint", "continue")))
    overwrite: bool = field(default=False, **_opt(
        "delete the run already in --output-dir (record, weights, checkpoints) and start "
        "afresh", known_as=("overwrite_output_dir", "force")))
    allow_data_change: bool = field(default=False, **_opt(
        "with --resume: continue although a data file changed since the checkpoint was saved "
        "(refused otherwise; the record lists the files that changed)"))
    progress: bool = field(default=True, **_opt("show progress bars"))

    def __post_init__(self) -> None:
        check_options(self)
        task = self.task_spec  # validates the name early
        if self.trainer == "fastnlp":
            if task.main_metric != "accuracy":
                raise OptionError(f"--trainer fastnlp reports accuracy; {task.name}'s main "
                                  f"metric is {task.main_metric}: train it with the library "
                                  "loop instead")
            if self.max_steps:
                raise OptionError("--trainer fastnlp trains whole epochs: use --epochs (and "
                                  "--train-batches-per-epoch) instead of --max-steps")

    @property
    def profile(self) -> str:
        """tiny (`tiny=True`), else the environment's cpu or gpu profile (`D2L_PROFILE`)."""
        from .profiles import profile_name

        return "tiny" if self.tiny else ("cpu" if profile_name() == "cpu" else "gpu")

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
            values["output_dir"] = f"{runs_root()}/{self.task}-{self.method}-{model}"
        from .profiles import apply_caps  # D2L_MAX_STEPS & co. (rehearsals); no-op when unset

        return RunArguments(**apply_caps(values))


# ---------------------------------------------------------------------------------------------
# Checks that need the model's config (read from local files only, so they cost milliseconds)

# architectures whose position ids start after the padding index (RoBERTa's learned offset)
_POSITION_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text")


def _local_model_config(model: str) -> dict | None:
    """The backbone's config.json as a dict, from shipped configs, a local folder, the
    minilm-l6 package or the hub cache; None when none of them has it (no network is used)."""
    from .backbones import CONFIG_DIR, SHIPPED_CONFIGS, ModelError, minilm_path

    candidates: list[Path] = []
    if model in SHIPPED_CONFIGS:
        candidates.append(CONFIG_DIR / f"{model}.json")
    elif model == "minilm-l6":
        try:
            candidates.append(Path(minilm_path()) / "config.json")
        except ModelError:
            return None
    elif os.path.isdir(model):
        candidates.append(Path(model) / "config.json")
    else:
        try:
            from huggingface_hub import try_to_load_from_cache

            cached = try_to_load_from_cache(model, "config.json")
        except (ValueError, OSError):
            cached = None
        if isinstance(cached, str):
            candidates.append(Path(cached))
    for path in candidates:
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            return None
    return None


def position_limit(config: dict) -> int | None:
    """The longest input (in tokens) the backbone's position embeddings allow."""
    limit = config.get("max_position_embeddings")
    if not isinstance(limit, int):
        return None
    if config.get("model_type") in _POSITION_OFFSET_MODELS:
        limit -= int(config.get("pad_token_id") or 1) + 1
    return limit


def _prompt_positions(args: RunArguments) -> tuple[int, str]:
    """Positions the method's prompt takes before the input (measured on BERT: peft's prompt
    tuning prepends embeddings, its P-Tuning v2 and prefix tuning shift the position ids by
    the past key/values; the adapters library's prefix tuning takes none)."""
    if args.method in ("prompt-tuning", "ptuning-v2"):
        return args.num_virtual_tokens, "--num-virtual-tokens"
    if args.method == "prefix" and args.backend == "peft":
        return args.prefix_length, "--prefix-length"
    return 0, ""


def check_against_model(args: RunArguments) -> RunArguments:
    """Resolve `args` and check the options whose valid range depends on the backbone
    (`--max-seq-length` against its position limit, `--trainable-layers` against its depth).
    Skipped when the config is not available locally: loading the model reports that."""
    args = args.resolved()
    config = _local_model_config(args.model)
    if config is None:
        return args
    limit = position_limit(config)
    prompt, prompt_option = _prompt_positions(args)
    if limit is not None and args.max_seq_length + prompt > limit:
        room = f" minus the {prompt} prompt positions of {prompt_option}" if prompt else ""
        raise OptionError(f"--max-seq-length must be between {MIN_SEQ_LENGTH} and "
                          f"{limit - prompt}, got {args.max_seq_length} ({args.model} has "
                          f"{limit} positions{room})")
    layers = config.get("num_hidden_layers", config.get("n_layers"))
    if args.method == "freeze" and isinstance(layers, int) and args.trainable_layers > layers:
        raise OptionError(f"--trainable-layers must be between 0 and {layers}, got "
                          f"{args.trainable_layers} ({args.model} has only {layers} encoder "
                          "layers)")
    return args


CHECKPOINT_NAMES = ("output_dir", "run", "run_dir", "model")  # what other tools call --checkpoint


@dataclass
class EvaluateArguments:
    """Options of `python -m d2l_utils evaluate`."""

    checkpoint: str = field(**_opt("output directory of a finished run", nonempty=True,
                                   known_as=CHECKPOINT_NAMES))
    task: str | None = field(default=None, **_opt("default: the task the run trained on",
                                                  metadata={"choices": list(TASKS)}))
    data_dir: str | None = field(default=None, **_opt(
        "folder in the official GLUE layout", nonempty=True,
        excludes={"tiny": "--tiny reads the built-in fixtures, not a folder; drop one of them"}))
    tiny: bool = field(default=False, **_opt("evaluate on the built-in fixtures"))
    max_eval_samples: int | None = field(default=None, **_opt("seeded subset of each split",
                                                              bounds=AT_LEAST_1))
    batch_size: int = field(default=64, **_opt("evaluation batch size", bounds=AT_LEAST_1,
                                               known_as=("eval_batch_size",)))

    def __post_init__(self) -> None:
        check_options(self)


@dataclass
class PredictArguments:
    """Options of `python -m d2l_utils predict`: exactly one of `--text`, `--input`, `--split`."""

    checkpoint: str = field(**_opt("output directory of a finished run", nonempty=True,
                                   known_as=CHECKPOINT_NAMES))
    text: list[str] | None = field(default=None, **_opt(
        "texts to predict, one example each (a pair task: two texts per example)",
        known_as=("texts", "sentence", "sentences")))
    input: str | None = field(default=None, **_opt(
        "a file to predict: the task's GLUE layout (labels optional), its test layout, or a TSV "
        "whose header names the task's columns; with labels the metrics are printed too",
        nonempty=True, known_as=("input_file", "file", "infile")))
    split: Literal["test"] | None = field(default=None, **_opt(
        "predict the task's test split(s) (hub, --data-dir or --tiny) into GLUE submission "
        "files"))
    output: str | None = field(default=None, **_opt(
        "--input: the predictions file (default: standard output); --split test: the folder "
        "for the submission files (default: CHECKPOINT/submission)", nonempty=True,
        known_as=("output_file", "out", "outfile")))
    task: str | None = field(default=None, **_opt(
        "default: the task the run trained on (--split test: only that one)",
        metadata={"choices": list(TASKS)}))
    data_dir: str | None = field(default=None, **_opt(
        "--split test: a folder in the official GLUE layout (default: the hub)", nonempty=True,
        excludes={"tiny": "--tiny reads the built-in fixtures, not a folder; drop one of them"}))
    tiny: bool = field(default=False, **_opt("--split test: the built-in test fixtures"))
    batch_size: int = field(default=64, **_opt("prediction batch size", bounds=AT_LEAST_1,
                                               known_as=("eval_batch_size",)))
    overwrite: bool = field(default=False, **_opt(
        "replace an existing predictions file or submission files", known_as=("force",)))
    progress: bool = field(default=True, **_opt("show a progress bar for files and splits"))

    def __post_init__(self) -> None:
        for number, text in enumerate(self.text or [], start=1):
            if isinstance(text, str) and not text.strip():
                raise OptionError(f"--text: text {number} is empty ({text!r}); nothing to "
                                  "predict")
        check_options(self)
        given = [option_name(name) for name in ("text", "input", "split")
                 if getattr(self, name) is not None]
        if len(given) != 1:
            raise OptionError("predict needs exactly one of --text, --input or --split test"
                              + (f"; got {' and '.join(given)}" if given else ""))
        if (self.data_dir or self.tiny) and self.split is None:
            raise OptionError("--data-dir and --tiny choose the data of --split test; --text "
                              "and --input bring their own")


@dataclass
class ExportArguments:
    """Options of `python -m d2l_utils export`."""

    checkpoint: str = field(**_opt("output directory of a finished run", nonempty=True,
                                   known_as=CHECKPOINT_NAMES))
    to: str = field(**_opt("the folder to write; it must not exist yet", nonempty=True,
                           known_as=("output", "out", "export_dir", "save_dir")))
    merge: bool = field(default=True, **_opt(
        "LoRA with peft: merge the matrices into a plain transformers model (merge_and_unload); "
        "--no-merge writes a peft adapter folder instead"))

    def __post_init__(self) -> None:
        check_options(self)
