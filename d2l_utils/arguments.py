"""Typed run options: the CLI, the notebooks and the tests all build the same `RunArguments`.

Fields left at None take a default from the profile (`profiles.PROFILES`) or from the method
(learning rate), so `RunArguments(task="sst2", method="lora", tiny=True)` is a complete run.

Each field is described with `option` (`d2l_utils.methods.base`): the help text and what a valid
value is (`bounds`, `nonempty`, options it `excludes`, names other tools give it); the method
options (`--r`, `--dropout`, ...) are the method configs' own fields. `check_options` enforces it
whenever the dataclass is built (from Python or the command line), so a bad value fails at once
with one line naming the option, the value and the valid range (`OptionError`, exit code 2 in the
CLI), never later inside torch or numpy.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .backbones import LR_SCALE
from .methods import METHODS, MethodConfig, check_model_type, method_config
from .methods.base import (
    AT_LEAST_0,
    AT_LEAST_1,
    FRACTION,
    POSITIVE,
    Bounds,
    HeadMode,
    OptionError,
    PoolerMode,
    check_options,
    method_option,
    option,
    option_name,
)
from .profiles import PROFILES, apply_caps, profile_name
from .tasks import TASKS, TaskSpec, get_task

OUTPUT_ROOT_ENV = "D2L_OUTPUT_DIR"  # where runs go by default (runs/TASK-METHOD-MODEL)
MIN_SEQ_LENGTH = 8  # room for the special tokens and a few word pieces of each sentence
NOT_WITH_TINY = "--tiny reads the built-in fixtures, not a folder; drop one of them"


DRIVE = Path("/content/drive/MyDrive")  # Google Drive, when mounted in Colab
DRIVE_RUNS = DRIVE / "bert-glue-book" / "runs"


def runs_root() -> str:
    """The folder default output folders go under: `$D2L_OUTPUT_DIR`; else, on Colab with
    Google Drive mounted, a folder on Drive (checkpoints there survive a recycled runtime,
    `/content` does not); else `runs`. Test harnesses point it at a fresh temporary folder."""
    return (os.environ.get(OUTPUT_ROOT_ENV, "").strip()
            or (str(DRIVE_RUNS) if DRIVE.is_dir() else "runs"))


@dataclass
class RunArguments:
    """Everything that defines one training run."""

    # --- data
    task: str = option(help="GLUE task or snli", choices=list(TASKS))
    data_dir: str | None = option(
        None, "folder in the official GLUE layout (e.g. DIR/SST-2/train.tsv); default: the hub",
        nonempty=True, excludes={"tiny": NOT_WITH_TINY})
    tiny: bool = option(False, "tiny profile: built-in fixtures, a tiny model, a few steps "
                               "(offline, seconds)")
    max_train_samples: int | None = option(None, "seeded subset of train", bounds=AT_LEAST_1)
    max_eval_samples: int | None = option(None, "seeded subset of each eval split",
                                          bounds=AT_LEAST_1)
    max_seq_length: int | None = option(
        None, "truncate longer inputs (128); at most the model's position limit",
        bounds=Bounds(MIN_SEQ_LENGTH), known_as=("max_length", "max_len", "seq_len",
                                                 "max_seq_len"))
    # --- model and method (the method options are the method configs' fields)
    model: str | None = option(
        None, "hub id, local folder, minilm-l6 (pretrained, offline) or tiny-bert (random)",
        nonempty=True, known_as=("model_name_or_path", "model_name", "backbone"))
    random_init: bool = option(
        False, "random weights from the shipped config (bert-base-uncased, roberta-base, "
        "distilbert-base-uncased): for parameter counts and throughput, not accuracy")
    method: str = option("full", "fine-tuning method", choices=list(METHODS))
    backend: Literal["peft", "adapters", "hf"] | None = option(
        None, "library for lora (default peft) and prefix (default adapters); hf: transformers "
        "alone (the other methods)")
    trainable_layers: int = method_option("trainable_layers")
    r: int = method_option("r")
    alpha: int = method_option("alpha")
    dropout: float = method_option("dropout")
    target_modules: list[str] = method_option("target_modules")
    prefix_length: int = method_option("prefix_length")
    num_virtual_tokens: int = method_option("num_virtual_tokens")
    head: HeadMode | None = method_option("head")
    pooler: PoolerMode | None = method_option("pooler")
    # --- optimisation
    trainer: Literal["loop", "hf", "fastnlp"] = option(
        "loop", "loop: the library's PyTorch loop; hf: the transformers Trainer; fastnlp: the "
        "fastNLP Trainer (accuracy tasks, whole epochs)")
    train_batches_per_epoch: int | None = option(
        None, "fastnlp: train at most this many batches of each epoch", bounds=AT_LEAST_1)
    epochs: float | None = option(
        None, "training epochs (3; tiny 2)", bounds=POSITIVE,
        known_as=("num_train_epochs", "num_epochs", "epoch", "n_epochs"))
    max_steps: int | None = option(None, "stop after this many optimizer steps",
                                   bounds=AT_LEAST_1,
                                   known_as=("num_steps", "steps", "max_train_steps"))
    batch_size: int | None = option(
        None, "training batch size (16; tiny 8)", bounds=AT_LEAST_1,
        known_as=("per_device_train_batch_size", "train_batch_size", "bs"))
    eval_batch_size: int | None = option(None, "default: 2 x batch size", bounds=AT_LEAST_1,
                                         known_as=("per_device_eval_batch_size",))
    lr: float | None = option(
        None, "peak learning rate (default: per method, x5 for small backbones such as "
        "minilm-l6)", bounds=POSITIVE, known_as=("learning_rate", "learningrate", "eta"))
    warmup_ratio: float = option(0.1, "share of steps with linear warmup", bounds=FRACTION,
                                 known_as=("warmup",))
    warmup_steps: int | None = option(
        None, "linear warmup over this many steps (overrides --warmup-ratio)",
        bounds=AT_LEAST_0)
    weight_decay: float = option(0.01, "AdamW weight decay (not on biases/LN)",
                                 bounds=AT_LEAST_0, known_as=("wd",))
    adam_epsilon: float = option(1e-6, "AdamW epsilon", bounds=POSITIVE,
                                 known_as=("eps", "epsilon"))
    max_grad_norm: float = option(
        1.0, "gradient clipping (0 disables); the library loop clips the head (with the "
        "pooler) and the method's parameters separately, each to this norm; --trainer hf and "
        "fastnlp clip one global norm (the record's gradient_clipping says which)",
        bounds=AT_LEAST_0, known_as=("clip", "grad_clip"))
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = option(
        "auto", "auto: bf16 (or fp16) on GPU, fp32 on CPU; bf16 also on a CPU with native bf16",
        known_as=("fp16", "bf16", "precision"))
    group_by_length: bool = option(True, "batch examples of similar length together (less "
                                         "padding)")
    seed: int = option(42, "seed for initialisation, data order and dropout",
                       bounds=Bounds(0, 2**32 - 1))
    output_dir: str | None = option(
        None, f"default: ${OUTPUT_ROOT_ENV} (else runs)/TASK-METHOD-MODEL", nonempty=True,
        known_as=("out", "output", "outdir", "run_dir"))
    eval_every_steps: int | None = option(
        None, "also evaluate every N optimizer steps (for curves; the time is not counted as "
        "training)", bounds=AT_LEAST_1, known_as=("eval_steps",))
    log_every: int = option(20, "steps between loss log entries", bounds=AT_LEAST_1,
                            known_as=("logging_steps", "log_steps"))
    save_model: bool = option(True, "save trainable weights (safetensors)")
    save_every_steps: int | None = option(
        None, "write a resumable checkpoint every N optimizer steps", bounds=AT_LEAST_1,
        known_as=("save_steps", "checkpoint_every"))
    keep_checkpoints: int = option(2, "how many recent checkpoints to keep", bounds=AT_LEAST_1,
                                   known_as=("save_total_limit",))
    resume: bool = option(
        False, "continue from the newest complete checkpoint in --output-dir (mid-epoch too)",
        excludes={"overwrite": "--resume continues the run in --output-dir, --overwrite "
                               "deletes it"},
        known_as=("resume_from_checkpoint", "continue"))
    overwrite: bool = option(
        False, "delete the run already in --output-dir (record, weights, checkpoints) and "
        "start afresh", known_as=("overwrite_output_dir", "force"))
    allow_data_change: bool = option(
        False, "with --resume: continue although a data file changed since the checkpoint was "
        "saved (refused otherwise; the record lists the files that changed)")
    progress: bool = option(True, "show progress bars")

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
            for name in ("save_every_steps", "resume"):
                if getattr(self, name):
                    raise OptionError(f"--{name.replace('_', '-')}: --trainer fastnlp writes no "
                                      "checkpoints; use --trainer loop or hf to checkpoint and "
                                      "resume")
            if self.epochs is not None and self.epochs != int(self.epochs):
                raise OptionError(f"--trainer fastnlp trains whole epochs, got --epochs "
                                  f"{self.epochs:g}; use --train-batches-per-epoch to train part "
                                  "of each")
        elif self.train_batches_per_epoch:
            raise OptionError(f"--train-batches-per-epoch is for --trainer fastnlp; --trainer "
                              f"{self.trainer} stops early with --max-steps")
        self.method_config()  # the method's own checks (--backend, --target-modules), now

    @property
    def profile(self) -> str:
        """tiny (`tiny=True`), else the environment's cpu or gpu profile (`D2L_PROFILE`)."""
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
        return RunArguments(**apply_caps(values))  # D2L_MAX_STEPS & co. (rehearsals), when set


# ---------------------------------------------------------------------------------------------
# Checks that need the model's config (read from local files only, so they cost milliseconds)

# architectures whose position ids start after the padding index (RoBERTa's learned offset)
_POSITION_OFFSET_MODELS = ("roberta", "xlm-roberta", "camembert", "longformer", "data2vec-text")


def _local_model_config(model: str) -> dict | None:
    """The backbone's config.json as a dict, from shipped configs, a local folder, the
    minilm-l6 package or the hub cache; None when none of them has it (no network is used)."""
    from huggingface_hub import try_to_load_from_cache

    from .backbones import CONFIG_DIR, SHIPPED_CONFIGS, minilm_path

    try:  # (a ModelError from minilm_path is a ValueError)
        path = (CONFIG_DIR / f"{model}.json" if model in SHIPPED_CONFIGS
                else Path(minilm_path()) / "config.json" if model == "minilm-l6"
                else Path(model) / "config.json" if os.path.isdir(model)
                else try_to_load_from_cache(model, "config.json"))
        return json.loads(Path(path).read_text()) if isinstance(path, (str, Path)) else None
    except (OSError, ValueError):
        return None


def check_against_model(args: RunArguments) -> RunArguments:
    """Resolve `args` and check the options whose valid range depends on the backbone
    (`--max-seq-length` against its position limit, `--trainable-layers` against its depth)
    and the method against its architecture (`check_model_type`). Skipped when the config is
    not available locally: loading the model reports that."""
    args = args.resolved()
    if (config := _local_model_config(args.model)) is None:
        return args
    check_model_type(config.get("model_type"), args.method_config())
    limit = config.get("max_position_embeddings")  # the longest input its positions allow
    if isinstance(limit, int) and config.get("model_type") in _POSITION_OFFSET_MODELS:
        limit -= int(config.get("pad_token_id") or 1) + 1
    # positions the method's prompt takes before the input (measured on BERT: peft's prompt
    # tuning prepends embeddings, its P-Tuning v2 and prefix tuning shift the position ids by
    # the past key/values; the adapters library's prefix tuning takes none)
    prompt, prompt_option = 0, ""
    if args.method in ("prompt-tuning", "ptuning-v2"):
        prompt, prompt_option = args.num_virtual_tokens, "--num-virtual-tokens"
    elif args.method == "prefix" and args.backend == "peft":
        prompt, prompt_option = args.prefix_length, "--prefix-length"
    if isinstance(limit, int) and args.max_seq_length + prompt > limit:
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


CHECKPOINT = option(help="output directory of a finished run", nonempty=True,
                    known_as=("output_dir", "run", "run_dir", "model"))  # other tools' names


@dataclass
class EvaluateArguments:
    """Options of `python -m d2l_utils evaluate`."""

    checkpoint: str = CHECKPOINT
    task: str | None = option(None, "default: the task the run trained on", choices=list(TASKS))
    data_dir: str | None = option(None, "folder in the official GLUE layout", nonempty=True,
                                  excludes={"tiny": NOT_WITH_TINY})
    tiny: bool = option(False, "evaluate on the built-in fixtures")
    max_eval_samples: int | None = option(None, "seeded subset of each split", bounds=AT_LEAST_1)
    batch_size: int = option(64, "evaluation batch size", bounds=AT_LEAST_1,
                             known_as=("eval_batch_size",))

    __post_init__ = check_options  # every option checked against its description, when built


@dataclass
class PredictArguments:
    """Options of `python -m d2l_utils predict`: exactly one of `--text`, `--input`, `--split`."""

    checkpoint: str = CHECKPOINT
    text: list[str] | None = option(
        None, "texts to predict, one example each (a pair task: two texts per example)",
        known_as=("texts", "sentence", "sentences"))
    input: str | None = option(
        None, "a file to predict: the task's GLUE layout (labels optional), its test layout, or "
        "a TSV whose header names the task's columns; with labels the metrics are printed too",
        nonempty=True, known_as=("input_file", "file", "infile"))
    split: Literal["test"] | None = option(
        None, "predict the task's test split(s) (hub, --data-dir or --tiny) into GLUE "
        "submission files")
    output: str | None = option(
        None, "--input: the predictions file (default: standard output); --split test: the "
        "folder for the submission files (default: CHECKPOINT/submission)", nonempty=True,
        known_as=("output_file", "out", "outfile"))
    task: str | None = option(None, "default: the task the run trained on (--split test: only "
                                    "that one)", choices=list(TASKS))
    data_dir: str | None = option(
        None, "--split test: a folder in the official GLUE layout (default: the hub)",
        nonempty=True, excludes={"tiny": NOT_WITH_TINY})
    tiny: bool = option(False, "--split test: the built-in test fixtures")
    batch_size: int = option(64, "prediction batch size", bounds=AT_LEAST_1,
                             known_as=("eval_batch_size",))
    overwrite: bool = option(False, "replace an existing predictions file or submission files",
                             known_as=("force",))
    progress: bool = option(True, "show a progress bar for files and splits")

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

    checkpoint: str = CHECKPOINT
    to: str = option(help="the folder to write; it must not exist yet", nonempty=True,
                     known_as=("output", "out", "export_dir", "save_dir"))
    merge: bool = option(
        True, "LoRA with peft: merge the matrices into a plain transformers model "
        "(merge_and_unload); --no-merge writes a peft adapter folder instead")

    __post_init__ = check_options  # every option checked against its description, when built
