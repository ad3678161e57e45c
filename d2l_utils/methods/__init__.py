# ruff: noqa: I001  (import order = registration order)
"""The six fine-tuning methods, one small module and one config object each (peft-style), found
through a registry: `method_config("lora", r=8)` builds `LoraConfig`, `build_model` applies it.
Each config's fields are the one definition of its options (default, help, valid range: see
`base.option`); `RunArguments` and `bench` take them from there.

Every method starts from a sequence classifier (the standard `...ForSequenceClassification`, or
the `adapters` model with its 2-layer head when `backend="adapters"`), decides what trains, and
leaves the rest of the pipeline unchanged. `count_parameters` splits the trainable parameters into
the method's own and the head's, as the chapters' tables report them.

    full.py      FullConfig            everything trains
    freeze.py    FreezeConfig          the last N encoder layers, the pooler and the head
    bitfit.py    BitFitConfig          bias terms
    lora.py      LoraConfig            low-rank A, B beside the attention projections
    prefix.py    PrefixConfig          per-layer key/value prefixes from an MLP
    prompts.py   PTuningV2Config       key/value prompts at every layer
                 PromptTuningConfig    a soft prompt on the input embeddings
"""

# The method modules register themselves on import, in the book's order (so listings follow it).
from .base import METHODS, HeadMode, MethodConfig, MethodError, method_config, register
from .full import FullConfig
from .freeze import FreezeConfig, encoder_layers
from .bitfit import BitFitConfig
from .lora import LoraConfig
from .prefix import PrefixConfig
from .prompts import PTuningV2Config, PromptTuningConfig
from .build import build_model, check_model_type, check_trainable, parameter_counts
from .counting import count_parameters, counted_parameters, is_head_parameter

__all__ = ["METHODS", "BitFitConfig", "FreezeConfig", "FullConfig", "HeadMode", "LoraConfig",
           "MethodConfig", "MethodError", "PTuningV2Config", "PrefixConfig",
           "PromptTuningConfig", "build_model", "check_model_type", "check_trainable",
           "count_parameters", "counted_parameters", "encoder_layers", "is_head_parameter",
           "method_config", "parameter_counts", "register"]
