"""What every chapter notebook shows: the profile banner and provenance labels for numbers."""

from __future__ import annotations

from typing import Any

from ..arguments import runs_root
from ..profiles import caps_note, profile_name


def in_notebook() -> bool:
    """True inside a Jupyter kernel, where a figure can be redrawn in place."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and "IPKernelApp" in getattr(shell, "config", {})


def banner_text(**settings: Any) -> str:
    """What this notebook run is (profile, caps, where runs go, the chapter's settings)."""
    profile = profile_name()
    if profile == "tiny":
        head = ("Profile: TINY (D2L_PROFILE=tiny or D2L_TINY=1) - built-in fixtures and a tiny "
                "model, a few steps. It checks that the chapter runs; its numbers are smoke "
                "tests, not results.")
    elif profile == "cpu":
        head = ("Profile: CPU (D2L_PROFILE=cpu) - the pretrained MiniLM-L6 on real data, a "
                "budget a laptop finishes. Set D2L_PROFILE=tiny for a seconds-long smoke run.")
    else:
        head = ("Profile: GPU - the chapter's full recipe (hub data and model, a Colab T4). "
                "Set D2L_PROFILE=cpu for a laptop's budget, tiny for a seconds-long smoke run.")
    caps = caps_note()
    lines = [head] + ([caps] if caps else [])
    lines.append(f"Runs, checkpoints and records go under {runs_root()} (D2L_OUTPUT_DIR).")
    lines += [f"  {key} = {value!r}" for key, value in settings.items()]
    return "\n".join(lines)


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
    return (f"{record.get('model')} | {record.get('task')} | {data.get('source', '?')}"
            f"{f', {train:,} train examples' if train else ''} | {record.get('device', '?')}"
            f" | {tag}")
