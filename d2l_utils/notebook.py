"""What every chapter notebook shares: the tiny/real profile switch and labels for its numbers.

`D2L_TINY=1` switches a notebook to the tiny profile (built-in fixtures, a tiny or packaged model,
a few steps: offline, seconds). With nothing set, the notebook does the real run of its chapter.
"""

from __future__ import annotations

import os
from typing import Any, TypeVar

TINY_ENV = "D2L_TINY"
T = TypeVar("T")


def tiny_profile() -> bool:
    """True when `D2L_TINY` is set to anything but empty/0/false."""
    return os.environ.get(TINY_ENV, "").strip().lower() not in ("", "0", "false", "no")


def profile_name() -> str:
    return "tiny" if tiny_profile() else "real"


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where a figure can be redrawn in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def choose(tiny: T, real: T) -> T:
    """The tiny or the real value, by the profile: the one switch every parameter cell uses."""
    return tiny if tiny_profile() else real


def profile_banner(**settings: Any) -> str:
    """Print (and return) what this notebook run is, so no number is read out of context."""
    if tiny_profile():
        head = ("Profile: TINY (D2L_TINY=1) - built-in fixtures and a tiny model, a few steps. "
                "It checks that the chapter runs; its numbers are smoke tests, not results.")
    else:
        head = ("Profile: REAL - the chapter's full recipe (hub data and model). "
                "Set D2L_TINY=1 for a seconds-long smoke run.")
    lines = [head] + [f"  {key} = {value!r}" for key, value in settings.items()]
    text = "\n".join(lines)
    print(text)
    return text


def result_label(record: dict[str, Any]) -> str:
    """A short provenance label for a run record: model, data, profile and device."""
    data = record.get("data", {})
    train = data.get("train_examples")
    profile = record.get("profile", "?")
    tag = "tiny smoke run, not a result" if profile == "tiny" else f"{profile} run"
    return (f"{record.get('model')} | {record.get('task')} | {data.get('source', '?')}"
            f"{f', {train:,} train examples' if train else ''} | {record.get('device', '?')}"
            f" | {tag}")
