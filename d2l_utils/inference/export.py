"""Export a finished run as a folder that other tools load (`python -m d2l_utils export`).

- full fine-tuning, freezing, BitFit and LoRA with peft (merged with `merge_and_unload`): a plain
  transformers model folder (config with `id2label`/`label2id`, tokenizer, safetensors weights),
  for `pipeline("text-classification", model=DIR)`;
- prefix tuning and P-Tuning v2 with peft, prompt tuning, and LoRA with `--no-merge`: a peft
  adapter folder (`PeftModel.save_pretrained`) for
  `AutoPeftModelForSequenceClassification.from_pretrained(DIR)`. Its `base_model_name_or_path`
  is the backbone's hub id; a backbone without one (`tiny-bert`, `minilm-l6`, a local folder),
  or a run that trained the pooler, gets its base weights in `DIR/base` (named by absolute path);
- the `adapters` backend: the adapters library's `save_adapter` with the task's head
  (`save_head`), loaded with `AutoAdapterModel.load_adapter(DIR)` on the base model (its weights
  in `DIR/base` when the backbone has no hub id).

The folder is written under a temporary name and renamed into place: an existing target is
refused before any work, and a failed export leaves nothing behind.
"""

from __future__ import annotations

import os
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch.nn as nn
from transformers import PreTrainedTokenizerBase

from ..arguments import RunArguments
from ..backbones import resolve_backbone
from ..training.evaluate import load_saved_model, saved_run_arguments
from . import ExportError

BASE_FOLDER = "base"  # the base weights, for backbones without a hub id


@dataclass(frozen=True)
class Exported:
    """What `export_run` wrote: the folder, its kind and the base model it needs."""

    path: Path
    kind: str  # transformers, peft or adapters
    base: str | None = None  # the base model's hub id or folder (peft and adapters)

    @property
    def summary(self) -> str:
        """One line saying what was written and how to load it."""
        loads = {"transformers": 'pipeline("text-classification", model=DIR)',
                 "peft": "AutoPeftModelForSequenceClassification.from_pretrained(DIR)",
                 "adapters": "AutoAdapterModel.from_pretrained(BASE).load_adapter(DIR, "
                             "set_active=True)"}[self.kind]
        base = f", base model {self.base}" if self.base else ""
        return f"exported a {self.kind} folder to {self.path}{base}; load it with {loads}"


def export_run(checkpoint: str | os.PathLike, to: str | os.PathLike,
               merge: bool = True) -> Exported:
    """Write the run in `checkpoint` (its final weights) to the new folder `to`; `merge` merges
    a peft LoRA run into a plain model."""
    target = Path(to)
    if os.path.lexists(target):
        raise ExportError(f"--to {target} exists; nothing was written (choose a new folder)")
    run = saved_run_arguments(str(checkpoint))
    # the backbone's model-hub id; None when it has none (tiny-bert's random weights, the
    # minilm-l6 package's folder, any local folder)
    source = resolve_backbone(run.model, random_init=run.random_init).weights_source
    hub = source if source and not os.path.isdir(source) else None
    tokenizer, model = load_saved_model(run, str(checkpoint))
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = target.with_name(f".{target.name}.partial-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        exported = _write(model, tokenizer, run, hub, staging, target.resolve(), merge)
        tokenizer.save_pretrained(staging)
        os.rename(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return exported


def _write(model: nn.Module, tokenizer: PreTrainedTokenizerBase, run: RunArguments,
           hub: str | None, staging: Path, final: Path, merge: bool) -> Exported:
    from peft import PeftModel

    base = str(final / BASE_FOLDER)
    if run.method_config().backend == "adapters":
        _save_adapters(model, run, staging, None if hub else staging / BASE_FOLDER)
        return Exported(final, "adapters", hub or base)
    if isinstance(model, PeftModel) and run.method == "lora" and merge:
        model = model.merge_and_unload()
    if not isinstance(model, PeftModel):
        model.save_pretrained(staging, safe_serialization=True)
        return Exported(final, "transformers")
    # the pooler is no part of a peft adapter: a trained one travels in the base weights
    with_base = hub is None or run.method_config().pooler_mode == "train"
    model.peft_config["default"].base_model_name_or_path = base if with_base else hub
    with warnings.catch_warnings():  # peft looks for the base's config, written next
        warnings.filterwarnings("ignore", message="Could not find a config file")
        model.save_pretrained(staging)
    if with_base:
        plain_model(model).save_pretrained(staging / BASE_FOLDER, safe_serialization=True)
        tokenizer.save_pretrained(staging / BASE_FOLDER)
    return Exported(final, "peft", base if with_base else hub)


def plain_model(model: nn.Module) -> nn.Module:
    """The transformers model inside a peft model, without peft's layers: LoRA unloaded
    (`unload`), the trained copies of `modules_to_save` (the head) put back in place."""
    if hasattr(model.base_model, "unload"):  # LoRA and the other tuners
        return model.unload()
    base = model.get_base_model()
    for name, module in list(base.named_modules()):
        if hasattr(module, "unload_and_optionally_merge_module"):  # ModulesToSaveWrapper
            parent_name, _, child = name.rpartition(".")
            setattr(base.get_submodule(parent_name), child,
                    module.unload_and_optionally_merge_module(merge=False, safe_merge=False,
                                                              adapter_names=None))
    return base


def _save_adapters(model: nn.Module, run: RunArguments, folder: Path,
                   base_folder: Path | None) -> None:
    """The adapters library's adapter and the task's head, in one folder (`load_adapter`
    loads both); the base model's weights in `base_folder` when given."""
    adapter = run.method  # the name `methods.base.train_adapter` gave it
    # the library's own file format: its safetensors writer refuses prefix tuning's shared pool
    model.save_adapter(str(folder), adapter, with_head=False)
    model.save_head(str(folder), run.task_spec.name)
    if base_folder is not None:  # the encoder alone: a plain transformers model, strictly
        from transformers import AutoModel  # loaded from the encoder's weights of the same name

        encoder = AutoModel.from_config(model.config)
        weights = model.base_model.state_dict()
        encoder.load_state_dict({name: weights[name] for name in encoder.state_dict()})
        encoder.save_pretrained(base_folder, safe_serialization=True)
