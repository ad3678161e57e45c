"""Build a sequence classifier with a method applied, and check the combination can train."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..backbones import Backbone, from_source, load_config, resolve_backbone
from ..tasks import TaskSpec, get_task
from .base import MethodConfig, MethodError
from .counting import count_parameters, set_head_mode, set_pooler_mode

if TYPE_CHECKING:
    import torch.nn as nn

# peft's prefix methods feed their prompts in as past key/values, which these models' attention
# layers do not take (found when P-Tuning v2 failed on DistilBERT's forward pass).
PAST_KEY_VALUE_METHODS = ("prefix", "ptuning-v2")
NO_PAST_KEY_VALUES = ("distilbert",)


def check_trainable(backbone: Backbone, task: TaskSpec, config: MethodConfig) -> None:
    """Fail before training when `config` can be built (and counted) on `backbone` but its
    forward pass cannot run there."""
    check_model_type(load_config(backbone, task).model_type, config)


def check_model_type(model_type: str | None, config: MethodConfig) -> None:
    """`check_trainable` from the backbone config's `model_type` alone (no weights needed)."""
    if (config.backend == "peft" and config.name in PAST_KEY_VALUE_METHODS
            and model_type in NO_PAST_KEY_VALUES):
        raise MethodError(
            f"--method {config.name} with peft needs attention that accepts past key/values, "
            f"which {model_type} does not have; use bert-base-uncased or roberta-base, or "
            "--method prompt-tuning (input prompt only)")


def build_model(backbone: Backbone, task: TaskSpec, config: MethodConfig) -> nn.Module:
    """A sequence classifier for `task` on `backbone` with `config` applied (what trains is set):
    the standard `...ForSequenceClassification`, or with `backend="adapters"` the `adapters`
    model with its classification head (2 layers, as in the MNLI seed)."""
    model_config = load_config(backbone, task)
    if config.backend == "adapters":
        from adapters import AutoAdapterModel as Auto
    else:
        from transformers import AutoModelForSequenceClassification as Auto
    model = (from_source(Auto, backbone.weights_source, config=model_config)
             if backbone.pretrained else Auto.from_config(model_config))
    if config.backend == "adapters":
        model.add_classification_head(task.name, num_labels=task.num_labels, layers=2,
                                      id2label=(model_config.id2label if task.num_labels > 1
                                                else None), overwrite_ok=True)
        # A hub checkpoint whose config names a masked-LM architecture (bert-base-uncased's)
        # arrives with its MLM head as a "default" head: unused, yet trainable (counted) and
        # saved in checkpoints, where a resume loads it and makes it the active head. Only the
        # task's stays.
        for name in [n for n in model.heads if n != task.name]:
            model.delete_head(name)
    model = config.apply(model)
    set_head_mode(model, config.head_mode)
    set_pooler_mode(model, config.pooler_mode)
    return model


def parameter_counts(model: str, task: TaskSpec | str, config: MethodConfig) -> dict[str, Any]:
    """`count_parameters` of `model` (a backbone name) with `config` applied, without weights.

    The architecture alone fixes the counts, so the model is built from its config with every
    parameter on the meta device (accelerate's `init_empty_weights`: shapes, no memory, no
    initialization): no download, a fraction of a second for bert-base, and the numbers are
    exact for the pretrained model too.
    """
    from accelerate import init_empty_weights

    task = get_task(task) if isinstance(task, str) else task
    with init_empty_weights():
        built = build_model(resolve_backbone(model, random_init=True), task, config)
    return count_parameters(built)
