"""What every method shares: option descriptions and their checks, the config base class and the
registry.

An option is a dataclass field described by `option`: its default, help text and valid values.
`check_options` enforces the description whenever the dataclass is built (from Python or the
command line), so a bad value fails at once with one line naming the option, the value and the
valid range (`OptionError`, exit code 2 in the CLI), never later inside torch or numpy. A method
is one config dataclass (its options, in one place) with an `apply(model)` that decides what
trains; `RunArguments` and `BenchArguments` take the method options from these configs.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import numbers
import types
import typing
from dataclasses import MISSING, asdict, dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeVar

if TYPE_CHECKING:
    import torch.nn as nn


HeadMode = Literal["train", "bias", "frozen"]
PoolerMode = Literal["train", "frozen"]


class OptionError(ValueError):
    """A bad option value or combination; the message names the option, the value and what is
    valid. The CLI prints it as one line and exits with code 2."""


class MethodError(OptionError):
    """An invalid method option, or a method the model cannot run; names the option."""


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
        if None not in (self.low, self.high) and not (self.open_low or self.open_high):
            return f"between {_show(self.low)} and {_show(self.high)}"
        sides = [f"{word} {_show(end)}" for end, word in [
            (self.low, "greater than" if self.open_low else "at least"),
            (self.high, "less than" if self.open_high else "at most")] if end is not None]
        return " and ".join(sides) or "any value"


def _show(value: Any) -> str:
    """A value as people write it: a string quoted, 0 not 0.0, 4294967295 not 4.29e+09, 1e-05
    as is."""
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return format(value, "g") if isinstance(value, float) else str(value)


POSITIVE, AT_LEAST_0, AT_LEAST_1 = Bounds(0, open_low=True), Bounds(0), Bounds(1)
FRACTION = Bounds(0, 1)


def option(default: Any = MISSING, help: str = "", *, like: dataclasses.Field | None = None,
           bounds: Bounds | None = None, nonempty: bool = False,
           excludes: dict[str, str] | None = None, known_as: tuple[str, ...] = (),
           choices: list[str] | None = None) -> Any:
    """A dataclass field described as an option: its default, help text, numeric `bounds`,
    whether it must be `nonempty`, the options it `excludes` ({other: why}), the names other tools
    give it (`known_as`: "did you mean" hints) and the `choices` of a string (for argparse).
    `like`: a field of another dataclass of options whose default and description this one
    takes (so both stay in step), but for what is given here."""
    metadata = {**(like.metadata if like else {}), **{key: value for key, value in [
        ("help", help), ("bounds", bounds), ("nonempty", nonempty), ("excludes", excludes),
        ("known_as", known_as), ("choices", choices)] if value}}
    if like is not None and default is MISSING:
        default = like.default if like.default_factory is MISSING else like.default_factory()
    if isinstance(default, list):
        return dataclasses.field(default_factory=lambda: list(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_name(name: str) -> str:
    """The command-line spelling of a field: `max_seq_length` -> `--max-seq-length`."""
    return "--" + name.replace("_", "-")


@functools.cache
def type_hints(cls: type) -> dict[str, Any]:
    """The resolved type of every field of `cls`."""
    return typing.get_type_hints(cls)


def unwrap_optional(hint: Any) -> tuple[Any, bool]:
    """(the type inside `X | None`, whether None is allowed)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0], True
    return hint, False


def check_value(name: str, hint: Any, value: Any, meta: typing.Mapping[str, Any],
                error: type[OptionError] = OptionError) -> None:
    """Raise `error` unless `value` is a valid value of the option described by the field's
    type `hint` and `meta`data."""
    option, (hint, optional) = option_name(name), unwrap_optional(hint)
    bounds: Bounds | None = meta.get("bounds")
    within, shown = f" {bounds}" if bounds else "", _show(value)
    if value is None and not optional:
        raise error(f"{option} is required")
    if value is None:
        return
    if typing.get_origin(hint) is Literal and value not in typing.get_args(hint):
        raise error(f"{option} must be one of {', '.join(typing.get_args(hint))}, got {shown}")
    if hint is bool and not isinstance(value, bool):
        raise error(f"{option} must be true or false, got {shown}")
    if hint in (int, float) and (isinstance(value, bool) or not isinstance(
            value, numbers.Integral if hint is int else numbers.Real)):
        raise error(f"{option} must be {'an integer' if hint is int else 'a number'}{within}, "
                    f"got {shown}")
    if hint is float and not math.isfinite(value):
        raise error(f"{option} must be a finite number{within}, got {value}")
    if hint is str and not isinstance(value, str):
        raise error(f"{option} must be a string, got {shown}")
    if hint is str and meta.get("nonempty") and not value.strip():
        raise error(f"{option} must not be empty, got {value!r}")
    if typing.get_origin(hint) in (list, tuple):
        if (not isinstance(value, (list, tuple))
                or not all(isinstance(v, str) and v.strip() for v in value)):
            raise error(f"{option} must be a list of names, got {shown}")
        if meta.get("nonempty") and not value:
            raise error(f"{option}: needs at least one value")
    if bounds is not None and value not in bounds:
        raise error(f"{option} must be {bounds}, got {shown}")


def check_options(options: Any, error: type[OptionError] = OptionError) -> None:
    """Check every field of a dataclass of options against its description (type, range,
    emptiness, excluded combinations); the first problem raises `error`."""
    fields, hints = dataclasses.fields(options), type_hints(type(options))
    for f in fields:
        check_value(f.name, hints[f.name], getattr(options, f.name), f.metadata, error)
    given = {f.name for f in fields
             if getattr(options, f.name) is not None and getattr(options, f.name) is not False}
    for f in fields:
        for other, why in f.metadata.get("excludes", {}).items():
            if {f.name, other} <= given:
                raise error(f"{option_name(f.name)} and {option_name(other)} cannot be used "
                            f"together: {why}")


@dataclass
class MethodConfig:
    """Options shared by all methods: how the classification `head` trains (None: the method's
    default) and BERT's `pooler` (dense + tanh on [CLS], which the linear head reads). By default
    the pooler trains wherever the whole head trains, since the head reads nothing else
    (RoBERTa's and DistilBERT's heads contain that dense layer; MiniLM's pooler was never
    trained); with a `bias` or `frozen` head it stays as the method sets it (full and freezing
    train it, BitFit its bias, the others freeze it). Counts report a trained pooler with the
    head (`head_params`), so a method's own count is the same either way."""

    name: ClassVar[str] = ""
    default_head: ClassVar[HeadMode] = "train"
    default_lr: ClassVar[float] = 2e-5  # used when --lr is not given
    backends: ClassVar[tuple[str, ...]] = ("hf",)
    head: HeadMode | None = option(None, "how the classification head trains (default: train; "
                                         "bitfit: bias)")
    pooler: PoolerMode | None = option(
        None, "BERT's pooler (dense + tanh on [CLS], not part of the head): train or freeze it "
        "on top of the method (default: it trains wherever the whole head trains; with a "
        "bias-only or frozen head, as the method sets it)")

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
        check_options(self, MethodError)
        check_backend(type(self), self.backend)
        if self.pooler and self.backend == "adapters":
            raise MethodError("--pooler: the adapters backend's head reads the [CLS] vector, "
                              "not BERT's pooler; leave --pooler unset with --backend adapters")

    def apply(self, model: nn.Module) -> nn.Module:
        """Decide what trains in `model` (and add the method's modules); returns the model."""
        raise NotImplementedError


METHODS: dict[str, type[MethodConfig]] = {}
C = TypeVar("C", bound=type[MethodConfig])


def register(cls: C) -> C:
    """Class decorator: make a method config findable by its `name`."""
    METHODS[cls.name] = cls
    return cls


def check_backend(cls: type[MethodConfig], backend: str | None) -> None:
    """Refuse a `--backend` the method `cls` has no implementation in."""
    if backend is not None and backend not in cls.backends:
        raise MethodError(f"--backend {backend} is not available for {cls.name}; "
                          f"choose one of: {', '.join(cls.backends)}")


def method_config(name: str, **options) -> MethodConfig:
    """Build the config of method `name` from the options that apply to it (others ignored;
    None means the method's default)."""
    if name not in METHODS:
        raise MethodError(f"unknown method {name!r}; choose one of: {', '.join(METHODS)}")
    cls = METHODS[name]
    check_backend(cls, options.get("backend"))
    known = {f.name for f in dataclasses.fields(cls)}
    config = cls(**{k: v for k, v in options.items() if k in known and v is not None})
    config.validate()
    return config


def method_option(name: str) -> Any:
    """A field with the default and description of the method option `name`, as the method's
    config defines it (`RunArguments` takes its method options from here)."""
    return option(like=next(f for cls in METHODS.values() for f in dataclasses.fields(cls)
                            if f.name == name))


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
