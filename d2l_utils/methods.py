"""The six fine-tuning methods: one config object each, one function that applies it.

Every method starts from a sequence classifier (the standard `...ForSequenceClassification`, or
the `adapters` model with its 2-layer head when `backend="adapters"`), decides what trains, and
leaves the rest of the pipeline unchanged. `count_parameters` splits the trainable parameters into
the method's own and the head's, as the chapters' tables report them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, ClassVar, Literal

import torch.nn as nn

from .backbones import Backbone, from_source, load_config, resolve_backbone
from .tasks import TaskSpec

HeadMode = Literal["train", "bias", "frozen"]


class MethodError(ValueError):
    """An invalid method option; the message names the option and its valid values."""


@dataclass
class MethodConfig:
    """Options shared by all methods. `head`: how the classification head trains
    (`train` all of it, only its `bias` terms, or `frozen`); None means the method's default."""

    name: ClassVar[str] = ""
    default_head: ClassVar[HeadMode] = "train"
    default_lr: ClassVar[float] = 2e-5  # used when --lr is not given
    backends: ClassVar[tuple[str, ...]] = ("hf",)
    head: HeadMode | None = None

    @property
    def backend(self) -> str:
        return self.backends[0]

    @property
    def head_mode(self) -> HeadMode:
        return self.head or self.default_head

    def to_dict(self) -> dict:
        return {"method": self.name, **asdict(self), "head": self.head_mode}


@dataclass
class FullConfig(MethodConfig):
    """Full fine-tuning: every parameter trains."""

    name: ClassVar[str] = "full"


@dataclass
class FreezeConfig(MethodConfig):
    """Freezing: only the last `trainable_layers` encoder layers, the pooler and the head train."""

    name: ClassVar[str] = "freeze"
    default_lr: ClassVar[float] = 1e-4
    trainable_layers: int = 1


@dataclass
class BitFitConfig(MethodConfig):
    """BitFit: only bias terms train. The head trains its biases only, as in the CoLA/STS-B seed
    (pass head="train" to also train the head's weights, as the BitFit paper does)."""

    name: ClassVar[str] = "bitfit"
    default_lr: ClassVar[float] = 1e-3
    default_head: ClassVar[HeadMode] = "bias"


@dataclass
class LoraConfig(MethodConfig):
    """LoRA: low-rank matrices A (r x d) and B (d x r) beside the `target_modules` projections."""

    name: ClassVar[str] = "lora"
    default_lr: ClassVar[float] = 4e-4
    backends: ClassVar[tuple[str, ...]] = ("peft", "adapters")
    backend: str = "peft"  # type: ignore[assignment]
    r: int = 8
    alpha: int = 16
    dropout: float = 0.1
    target_modules: tuple[str, ...] = ("query", "value")


@dataclass
class PrefixConfig(MethodConfig):
    """Prefix tuning: per-layer key/value prefixes produced by an MLP from `prefix_length`
    embeddings (the reparametrization of Li & Liang, 2021)."""

    name: ClassVar[str] = "prefix"
    default_lr: ClassVar[float] = 1e-4  # the MNLI seed's; 5e-4 collapsed on SST-2 (MiniLM)
    backends: ClassVar[tuple[str, ...]] = ("adapters", "peft")
    backend: str = "adapters"  # type: ignore[assignment]
    prefix_length: int = 30
    bottleneck_size: int = 512


@dataclass
class PTuningV2Config(MethodConfig):
    """P-Tuning v2: trainable key/value prompts at every layer, no reparametrization."""

    name: ClassVar[str] = "ptuning-v2"
    default_lr: ClassVar[float] = 5e-3
    backends: ClassVar[tuple[str, ...]] = ("peft",)
    num_virtual_tokens: int = 20


@dataclass
class PromptTuningConfig(MethodConfig):
    """Prompt tuning: a shallow soft prompt prepended to the input embeddings only."""

    name: ClassVar[str] = "prompt-tuning"
    default_lr: ClassVar[float] = 1e-2
    backends: ClassVar[tuple[str, ...]] = ("peft",)
    num_virtual_tokens: int = 20


METHODS: dict[str, type[MethodConfig]] = {
    cls.name: cls for cls in (FullConfig, FreezeConfig, BitFitConfig, LoraConfig, PrefixConfig,
                              PTuningV2Config, PromptTuningConfig)
}


def method_config(name: str, **options) -> MethodConfig:
    """Build the config of method `name` from the options that apply to it (others ignored)."""
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    cls = METHODS[name]
    backend = options.get("backend")
    if backend is not None and backend not in cls.backends:
        raise MethodError(f"--backend {backend} is not available for {name}; "
                          f"choose one of: {', '.join(cls.backends)}")
    known = set(cls.__dataclass_fields__)
    config = cls(**{k: v for k, v in options.items() if k in known and v is not None})
    validate(config)
    return config


def validate(config: MethodConfig) -> None:
    """Reject option values that cannot work, naming the option."""
    if config.backend not in type(config).backends:
        raise MethodError(f"--backend {config.backend} is not available for {config.name}; "
                          f"choose one of: {', '.join(type(config).backends)}")
    if config.head not in (None, "train", "bias", "frozen"):
        raise MethodError(f"--head {config.head}: choose one of train, bias, frozen")
    positive = {"r": "--r", "alpha": "--alpha", "prefix_length": "--prefix-length",
                "num_virtual_tokens": "--num-virtual-tokens",
                "bottleneck_size": "--bottleneck-size"}
    for attr, option in positive.items():
        value = getattr(config, attr, 1)
        if value < 1:
            raise MethodError(f"{option} must be at least 1, got {value}")
    if isinstance(config, FreezeConfig) and config.trainable_layers < 0:
        raise MethodError(f"--trainable-layers must be >= 0, got {config.trainable_layers}")
    if isinstance(config, LoraConfig):
        if not 0 <= config.dropout < 1:
            raise MethodError(f"--dropout must be in [0, 1), got {config.dropout}")
        if not config.target_modules:
            raise MethodError("--target-modules needs at least one module name")
        if config.backend == "adapters":
            unknown = set(config.target_modules) - set(_ADAPTERS_MATRICES)
            if unknown:
                raise MethodError(f"--target-modules {sorted(unknown)} not supported by the "
                                  f"adapters backend; choose from {list(_ADAPTERS_MATRICES)}")


_ADAPTERS_MATRICES = {"query": "q", "key": "k", "value": "v"}


# ---------------------------------------------------------------------------------------------
# Building a model


# peft's prefix methods feed their prompts in as past key/values, which these models' attention
# layers do not take (found when P-Tuning v2 failed on DistilBERT's forward pass).
PAST_KEY_VALUE_METHODS = ("prefix", "ptuning-v2")
NO_PAST_KEY_VALUES = ("distilbert",)


def check_trainable(backbone: Backbone, task: TaskSpec, config: MethodConfig) -> None:
    """Fail before training when `config` can be built (and counted) on `backbone` but its
    forward pass cannot run there."""
    model_type = load_config(backbone, task).model_type
    if (config.backend == "peft" and config.name in PAST_KEY_VALUE_METHODS
            and model_type in NO_PAST_KEY_VALUES):
        raise MethodError(
            f"--method {config.name} with peft needs attention that accepts past key/values, "
            f"which {model_type} does not have; use bert-base-uncased or roberta-base, or "
            "--method prompt-tuning (input prompt only)")


def build_model(backbone: Backbone, task: TaskSpec, config: MethodConfig) -> nn.Module:
    """A sequence classifier for `task` on `backbone` with `config` applied (what trains is set)."""
    model_config = load_config(backbone, task)
    if config.backend == "adapters":
        model = _adapters_model(backbone, model_config, task)
    else:
        from transformers import AutoModelForSequenceClassification as Auto

        model = (from_source(Auto, backbone.weights_source, config=model_config)
                 if backbone.pretrained else Auto.from_config(model_config))
    model = APPLY[config.name](model, config)
    _set_head_mode(model, config.head_mode)
    return model


def _adapters_model(backbone: Backbone, model_config, task: TaskSpec) -> nn.Module:
    """The `adapters` model with its classification head (2 layers, as in the MNLI seed)."""
    from adapters import AutoAdapterModel

    model = (from_source(AutoAdapterModel, backbone.weights_source, config=model_config)
             if backbone.pretrained else AutoAdapterModel.from_config(model_config))
    model.add_classification_head(task.name, num_labels=task.num_labels, layers=2,
                                  id2label=model_config.id2label if task.num_labels > 1 else None,
                                  overwrite_ok=True)
    return model


def _freeze_all(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad = False


def _apply_full(model: nn.Module, config: FullConfig) -> nn.Module:
    for param in model.parameters():
        param.requires_grad = True
    return model


def encoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of transformer blocks of a BERT, RoBERTa or DistilBERT classifier."""
    base = model.base_model
    for path in ("encoder.layer", "transformer.layer"):
        module = base
        for attr in path.split("."):
            module = getattr(module, attr, None)
        if isinstance(module, nn.ModuleList):
            return module
    raise MethodError(f"cannot find the encoder layers of {type(model).__name__}")


def _apply_freeze(model: nn.Module, config: FreezeConfig) -> nn.Module:
    layers = encoder_layers(model)
    if config.trainable_layers > len(layers):
        raise MethodError(f"--trainable-layers {config.trainable_layers}: the model has only "
                          f"{len(layers)} encoder layers")
    _freeze_all(model)
    unfrozen = list(layers)[len(layers) - config.trainable_layers:]
    pooler = getattr(model.base_model, "pooler", None)
    for module in unfrozen + ([pooler] if pooler is not None else []):
        for param in module.parameters():
            param.requires_grad = True
    return model


def _apply_bitfit(model: nn.Module, config: BitFitConfig) -> nn.Module:
    for name, param in model.named_parameters():
        param.requires_grad = name.endswith("bias")
    return model


def _apply_lora(model: nn.Module, config: LoraConfig) -> nn.Module:
    if config.backend == "adapters":
        from adapters import LoRAConfig

        adapter = LoRAConfig(r=config.r, alpha=config.alpha, dropout=config.dropout,
                             selfattn_lora=True, intermediate_lora=False, output_lora=False,
                             attn_matrices=[_ADAPTERS_MATRICES[m] for m in config.target_modules])
        return _train_adapter(model, "lora", adapter)
    from peft import LoraConfig as PeftLora
    from peft import TaskType, get_peft_model

    return get_peft_model(model, PeftLora(task_type=TaskType.SEQ_CLS, r=config.r,
                                          lora_alpha=config.alpha, lora_dropout=config.dropout,
                                          target_modules=list(config.target_modules)))


def _apply_prefix(model: nn.Module, config: PrefixConfig) -> nn.Module:
    if config.backend == "adapters":
        from adapters import PrefixTuningConfig

        adapter = PrefixTuningConfig(prefix_length=config.prefix_length, flat=False,
                                     bottleneck_size=config.bottleneck_size)
        return _train_adapter(model, "prefix", adapter)
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    return get_peft_model(model, PrefixTuningConfig(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=config.prefix_length,
        prefix_projection=True, encoder_hidden_size=config.bottleneck_size,
        **_prompt_shape(model)))


def _apply_ptuning_v2(model: nn.Module, config: PTuningV2Config) -> nn.Module:
    from peft import PrefixTuningConfig, TaskType, get_peft_model

    return get_peft_model(model, PrefixTuningConfig(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=config.num_virtual_tokens,
        prefix_projection=False, **_prompt_shape(model)))


def _apply_prompt_tuning(model: nn.Module, config: PromptTuningConfig) -> nn.Module:
    from peft import PromptTuningConfig as PeftPromptTuning
    from peft import TaskType, get_peft_model

    return get_peft_model(model, PeftPromptTuning(
        task_type=TaskType.SEQ_CLS, num_virtual_tokens=config.num_virtual_tokens,
        **_prompt_shape(model)))


def _prompt_shape(model: nn.Module) -> dict[str, int]:
    """Sizes peft's prompt methods need; given explicitly because peft cannot read them from
    every config (DistilBERT names them `dim`, `n_layers`, `n_heads`)."""
    config = model.config
    return {"token_dim": config.hidden_size, "num_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads}


def _train_adapter(model: nn.Module, name: str, adapter_config) -> nn.Module:
    """Add an `adapters` method and freeze everything but it and the head."""
    model.add_adapter(name, config=adapter_config, overwrite_ok=True, set_active=True)
    model.train_adapter(name)
    return model


APPLY = {"full": _apply_full, "freeze": _apply_freeze, "bitfit": _apply_bitfit,
         "lora": _apply_lora, "prefix": _apply_prefix, "ptuning-v2": _apply_ptuning_v2,
         "prompt-tuning": _apply_prompt_tuning}


# ---------------------------------------------------------------------------------------------
# Counting parameters

_HEAD_MARKERS = ("classifier.", "pre_classifier.", "heads.")


def is_head_parameter(name: str) -> bool:
    """True for parameters of the classification head (HF, peft-wrapped or `adapters` head)."""
    return any(name.startswith(m) or f".{m}" in name for m in _HEAD_MARKERS)


def counted_parameters(model: nn.Module):
    """(name, parameter) pairs used in the forward pass.

    peft keeps a frozen copy of the head (`original_module`) beside the trained one
    (`modules_to_save`); the copy is skipped so totals match the architecture.
    """
    return [(n, p) for n, p in model.named_parameters() if ".original_module." not in n]


def _set_head_mode(model: nn.Module, mode: HeadMode) -> None:
    for name, param in counted_parameters(model):
        if is_head_parameter(name):
            param.requires_grad = mode == "train" or (mode == "bias" and name.endswith("bias"))


def count_parameters(model: nn.Module) -> dict[str, int | float]:
    """Total and trainable parameters, with the trainable ones split into method and head."""
    total = trainable = head = 0
    for name, param in counted_parameters(model):
        total += param.numel()
        if param.requires_grad:
            trainable += param.numel()
            head += param.numel() if is_head_parameter(name) else 0
    return {"total": total, "trainable": trainable, "method_params": trainable - head,
            "head_params": head, "trainable_percent": round(100 * trainable / total, 4)}


__all__ = ["METHODS", "MethodConfig", "MethodError", "build_model", "count_parameters",
           "method_config", "encoder_layers"]


def parameter_counts(model: str, task: TaskSpec | str, config: MethodConfig) -> dict[str, Any]:
    """`count_parameters` of `model` (a backbone name) with `config` applied, without weights.

    The architecture alone fixes the counts, so the model is built with random weights from its
    config: no download, and the numbers are exact for the pretrained model too.
    """
    from .tasks import get_task

    task = get_task(task) if isinstance(task, str) else task
    return count_parameters(build_model(resolve_backbone(model, random_init=True), task, config))
