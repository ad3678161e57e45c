"""Notebooks under pytest (nbval) run in the tiny profile unless told otherwise, offline, and
with their runs' default output folders in a fresh temporary folder of this session
(`D2L_OUTPUT_DIR`), so they never meet runs left by another session or by the user."""

import os
import tempfile

if not os.environ.get("D2L_PROFILE"):  # D2L_TINY=1 with another D2L_PROFILE is an error
    os.environ.setdefault("D2L_TINY", "1")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ["D2L_OUTPUT_DIR"] = tempfile.mkdtemp(prefix="d2l_notebook_runs_")
