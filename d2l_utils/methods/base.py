"""What every method shares: the config base class, the registry and option checks.

A method is one config dataclass (its options and defaults, in one place) with an `apply(model)`
that decides what trains. Each lives in its own module and registers itself with `@register`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Literal, TypeVar

import torch.nn as nn

HeadMode = Literal["train", "bias", "frozen"]
HEAD_MODES: tuple[str, ...] = ("train", "bias", "frozen")
PoolerMode = Literal["train", "frozen"]
POOLER_MODES: tuple[str, ...] = ("train", "frozen")


class MethodError(ValueError):
    """An invalid method option; the message names the option and its valid values."""


@dataclass
class MethodConfig:
    """Options shared by all methods. `head`: how the classification head trains
    (`train` all of it, only its `bias` terms, or `frozen`); None means the method's default.

    `pooler`: BERT's pooler (a dense layer + tanh on the `[CLS]` vector, which the linear head
    reads). None (the default) trains it wherever the whole head trains, since the head reads
    nothing else: RoBERTa's and DistilBERT's heads contain that dense layer, and MiniLM's pooler
    was never trained (a sentence encoder trained with mean pooling). With a `bias` or `frozen`
    head, None leaves it as the method sets it (full and freezing train it, the others freeze
    it; BitFit trains its bias). `train` or `frozen` decides it outright. Counts report a trained
    pooler with the head (`head_params`), so a method's own count is the same either way."""

    name: ClassVar[str] = ""
    default_head: ClassVar[HeadMode] = "train"
    default_lr: ClassVar[float] = 2e-5  # used when --lr is not given
    backends: ClassVar[tuple[str, ...]] = ("hf",)
    positive_options: ClassVar[tuple[str, ...]] = ()  # integer options that must be >= 1
    head: HeadMode | None = None
    pooler: PoolerMode | None = None

    @property
    def backend(self) -> str:
        return self.backends[0]

    @property
    def head_mode(self) -> HeadMode:
        return self.head or self.default_head

    @property
    def pooler_mode(self) -> PoolerMode | None:
        """What happens to BERT's pooler: `train`, `frozen`, or None (as the method sets it)."""
        if self.pooler or self.backend == "adapters":  # the adapters head reads [CLS] itself
            return self.pooler
        return "train" if self.head_mode == "train" else None

    def to_dict(self) -> dict:
        return {"method": self.name, **asdict(self), "head": self.head_mode,
                "pooler": self.pooler_mode}

    def validate(self) -> None:
        """Reject option values that cannot work, naming the option (extended per method)."""
        if self.backend not in type(self).backends:
            raise MethodError(f"--backend {self.backend} is not available for {self.name}; "
                              f"choose one of: {', '.join(type(self).backends)}")
        if self.head not in (None, *HEAD_MODES):
            raise MethodError(f"--head {self.head}: choose one of {', '.join(HEAD_MODES)}")
        if self.pooler not in (None, *POOLER_MODES):
            raise MethodError(f"--pooler {self.pooler}: choose one of {', '.join(POOLER_MODES)}")
        if self.pooler and self.backend == "adapters":
            raise MethodError("--pooler: the adapters backend's head reads the [CLS] vector, "
                              "not BERT's pooler; leave --pooler unset with --backend adapters")
        for attr in self.positive_options:
            value = getattr(self, attr)
            if value < 1:
                raise MethodError(f"--{attr.replace('_', '-')} must be at least 1, got {value}")

    def apply(self, model: nn.Module) -> nn.Module:
        """Decide what trains in `model` (and add the method's modules); returns the model."""
        raise NotImplementedError


METHODS: dict[str, type[MethodConfig]] = {}
C = TypeVar("C", bound=type[MethodConfig])


def register(cls: C) -> C:
    """Class decorator: make a method config findable by its `name`."""
    METHODS[cls.name] = cls
    return cls


def method_config(name: str, **options) -> MethodConfig:
    """Build the config of method `name` from the options that apply to it (others ignored;
    None means the method's default)."""
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    cls = METHODS[name]
    backend = options.get("backend")
    if backend is not None and backend not in cls.backends:
        raise MethodError(f"--backend {backend} is not available for {name}; "
                          f"choose one of: {', '.join(cls.backends)}")
    known = set(cls.__dataclass_fields__)
    config = cls(**{k: v for k, v in options.items() if k in known and v is not None})
    config.validate()
    return config


def freeze_all(model: nn.Module) -> None:
    for param in model.parameters():
        param.requires_grad = False


def train_adapter(model: nn.Module, name: str, adapter_config) -> nn.Module:
    """Add an `adapters` method and freeze everything but it and the head."""
    model.add_adapter(name, config=adapter_config, overwrite_ok=True, set_active=True)
    model.train_adapter(name)
    return model


def prompt_shape(model: nn.Module) -> dict[str, int]:
    """Sizes peft's prompt methods need; given explicitly because peft cannot read them from
    every config (DistilBERT names them `dim`, `n_layers`, `n_heads`)."""
    config = model.config
    return {"token_dim": config.hidden_size, "num_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads}
