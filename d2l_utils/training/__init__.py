"""The training pipeline: prepare a run, train it (the library loop, the HF Trainer or fastNLP),
evaluate, checkpoint and write its record."""

from .run import PreparedRun, prepare_run, train

__all__ = ["PreparedRun", "prepare_run", "train"]
