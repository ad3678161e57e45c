"""What every chapter notebook shows: the profile banner and provenance labels for numbers."""

from __future__ import annotations

import os
from typing import Any

from ..arguments import runs_root
from ..profiles import DATA_DIR_ENV, caps_note, data_dir, profile_name


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where a figure can be redrawn in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def banner_text(model: Any = None, data: Any = None, budget: Any = None, **settings: Any) -> str:
    """What this notebook run is: one line with the profile, model, data and budget, then the
    caps, where runs go, and the chapter's other settings."""
    profile = profile_name()
    if profile == "tiny":
        head = ("Profile: TINY (D2L_PROFILE=tiny or D2L_TINY=1) - built-in fixtures and a tiny "
                "model, a few steps; numbers are smoke tests, not results")
        if os.environ.get(DATA_DIR_ENV, "").strip():
            head += f" ({DATA_DIR_ENV} is ignored in this profile)"
    elif profile == "cpu":
        head = "Profile: CPU (D2L_PROFILE=cpu) - the pretrained MiniLM-L6 on real data"
    else:
        head = "Profile: GPU - the chapter's original recipe (Colab T4)"
    if data is None and profile != "tiny":  # where the data comes from
        folder = data_dir()
        data = f"{folder} (D2L_DATA_DIR)" if folder else "the Hugging Face hub"
    parts = [head, *(f"{key} {value}" for key, value in
                     (("model", model), ("data", data), ("budget", budget)) if value is not None)]
    lines = [" | ".join(parts), caps_note(),
             f"Runs, checkpoints and records go under {runs_root()} (D2L_OUTPUT_DIR). "
             "D2L_PROFILE=tiny|cpu|gpu switches the profile.",
             *(f"  {key} = {value!r}" for key, value in settings.items())]
    return "\n".join(line for line in lines if line)


def profile_banner(**settings: Any) -> None:
    """Print what this notebook run is, so no number is read out of context (printed once:
    nothing is returned for the notebook to echo)."""
    print(banner_text(**settings))


def result_label(record: dict[str, Any]) -> str:
    """A short provenance label for a run record: model, data, profile and device."""
    data = record.get("data", {})
    train = data.get("train_examples")
    profile = record.get("profile", "?")
    tag = "tiny smoke run, not a result" if profile == "tiny" else f"{profile} run"
    source = data.get("source", "?")
    folder = "local GLUE folder "
    if source.startswith(folder):  # the folder's name, not a path of the machine it ran on
        source = folder + os.path.basename(os.path.normpath(source[len(folder):]))
    return (f"{record.get('model')} | {record.get('task')} | {source}"
            f"{f', {train:,} train examples' if train else ''} | {record.get('device', '?')}"
            f" | {tag}")
