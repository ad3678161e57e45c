"""Notebooks under pytest (nbval) run in the tiny profile unless told otherwise, offline."""

import os

os.environ.setdefault("D2L_TINY", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
