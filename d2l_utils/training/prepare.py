"""Build everything a trainer needs from `RunArguments`: data, tokenizer, model and method."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch.nn as nn
from datasets import DatasetDict
from transformers import PreTrainedTokenizerBase, set_seed

from ..arguments import RunArguments
from ..backbones import Backbone, load_config, load_tokenizer, resolve_backbone
from ..data import load_task_data
from ..methods import MethodConfig, build_model, check_trainable, count_parameters
from ..preprocessing import tokenize_splits
from ..tasks import TaskSpec


@dataclass
class PreparedRun:
    """Everything a trainer needs, built once from `RunArguments`."""

    args: RunArguments  # resolved: no None defaults left
    task: TaskSpec
    method: MethodConfig
    backbone: Backbone
    tokenizer: PreTrainedTokenizerBase
    model: nn.Module
    data: DatasetDict  # tokenized splits
    params: dict[str, Any]

    @property
    def data_source(self) -> str:
        if self.args.tiny:
            return "built-in fixtures (d2l_utils.fixtures)"
        return f"local GLUE folder {self.args.data_dir}" if self.args.data_dir else "hub"


def prepare_run(args: RunArguments) -> PreparedRun:
    """Load data, tokenizer and model, and apply the method; seeded, so runs repeat exactly."""
    args = args.resolved()
    task, method = args.task_spec, args.method_config()
    set_seed(args.seed)
    raw = load_task_data(task, data_dir=args.data_dir, tiny=args.tiny,
                         max_train_samples=args.max_train_samples,
                         max_eval_samples=args.max_eval_samples, seed=args.seed)
    backbone = resolve_backbone(args.model, random_init=args.random_init)
    check_trainable(backbone, task, method)  # before the weights are loaded
    tokenizer = load_tokenizer(backbone, load_config(backbone, task))
    model = build_model(backbone, task, method)
    data = tokenize_splits(raw, tokenizer, task, args.max_seq_length)
    return PreparedRun(args, task, method, backbone, tokenizer, model, data,
                       count_parameters(model))


def check_output_dir(output_dir: str) -> Path:
    """Create the output directory and fail now, not after training, if it is not writable."""
    path = Path(output_dir)
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".write_test"
        probe.write_text("ok")
        probe.unlink()
    except OSError as err:
        raise OSError(f"--output-dir {path} is not writable ({err.strerror}); choose "
                      "another folder") from None
    return path
