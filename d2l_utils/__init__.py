"""Fine-tuning BERT-family encoders on GLUE and NLI: the library behind the book.

The public API, imported lazily so that `import d2l_utils` stays cheap:

    from d2l_utils import RunArguments, train
    record = train(RunArguments(task="sst2", method="lora", tiny=True))

Subpackages: `training` (prepare, loop, HF Trainer, fastNLP, evaluation, records, checkpoints),
`inference` (predict with a finished run, GLUE submission files, export for other tools),
`scratch` (chapter 1's from-scratch BERT), `pages` (what only the notebooks and the website use).
"""

from __future__ import annotations

import importlib
from typing import Any

_PUBLIC = {
    "RunArguments": "d2l_utils.arguments",
    "train": "d2l_utils.training.run",
    "evaluate_checkpoint": "d2l_utils.training.evaluate",
    "Predictor": "d2l_utils.inference.predict",
    "get_task": "d2l_utils.tasks",
    "load_task_data": "d2l_utils.data",
    "method_config": "d2l_utils.methods",
    "parameter_counts": "d2l_utils.methods",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'd2l_utils' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])
