"""The profile switch every chapter and run shares: which data, model and budget to use.

Three profiles, one switch (`D2L_PROFILE`, default `gpu`):

- `tiny`: the built-in fixtures, a tiny random model, a few steps (offline, seconds): what CI and
  the book execute. `D2L_TINY=1` means the same (yes/no variables accept 1/true/yes/on and
  0/false/no/off only: `D2L_TINY=flase` is an error, never a guess).
- `cpu`: the pretrained MiniLM-L6 (`minilm-l6`) on real data, a budget a laptop finishes.
- `gpu`: the chapter's original recipe (bert-base-uncased, roberta-base, d2l's `bert.small`) on
  hub data, for a Colab T4.

Conflicting settings (`D2L_TINY=1` with `D2L_PROFILE=gpu`) are an error, never a silent choice.

Rehearsal caps (`D2L_MAX_STEPS`, `D2L_MAX_EVAL_SAMPLES`, `D2L_MAX_BATCH_SIZE`) shrink a run of any
profile to a few steps on a few examples, for rehearsing the real path (tests/test_rehearsal.py).
Every trainer honours them (the library loop, the transformers Trainer and its Optuna search,
fastNLP, chapter 1's own loop); the banner prints them, run records store them, and the Results
page refuses a capped record.
"""

from __future__ import annotations

import difflib
import math
import os
from typing import Any, TypeVar

TINY_ENV = "D2L_TINY"
PROFILE_ENV = "D2L_PROFILE"
DATA_DIR_ENV = "D2L_DATA_DIR"
# Each profile's run defaults (`RunArguments` fields left at None), and the profiles' names.
# Batch 16 and 3 epochs are in the BERT paper's grid (on real SST-2 with MiniLM, batch 16 beat 32
# for the same epoch: 0.846 vs 0.825).
PROFILES: dict[str, dict] = {
    "tiny": {"model": "tiny-bert", "epochs": 2.0, "batch_size": 8, "max_seq_length": 64},
    "cpu": {"model": "minilm-l6", "epochs": 3.0, "batch_size": 16, "max_seq_length": 128},
    "gpu": {"model": "bert-base-uncased", "epochs": 3.0, "batch_size": 16,
            "max_seq_length": 128},
}
DEFAULT_PROFILE = "gpu"
# Rehearsal caps: environment variable -> the key in `rehearsal_caps()` and in run records.
CAP_ENV = {"D2L_MAX_STEPS": "max_steps", "D2L_MAX_EVAL_SAMPLES": "max_eval_samples",
           "D2L_MAX_BATCH_SIZE": "max_batch_size"}
T = TypeVar("T")
_MISSING: Any = object()


class ProfileError(ValueError):
    """A bad or contradictory profile setting; the message names the variables and the fix."""


# The spellings a yes/no variable accepts (any case); anything else is an error, never a guess.
FLAG_VALUES = {"1": True, "true": True, "yes": True, "on": True,
               "0": False, "false": False, "no": False, "off": False, "": False}


def env_flag(name: str) -> bool:
    """A yes/no environment variable (unset is no); a value that is neither (`flase`) is a
    `ProfileError`."""
    raw = os.environ.get(name, "")
    if (value := FLAG_VALUES.get(raw.strip().lower())) is None:
        raise ProfileError(f"{name}={raw!r}: not a yes/no value; use 1, true, yes or on, or 0, "
                           "false, no or off (or unset it)")
    return value


def profile_name() -> str:
    """`tiny`, `cpu` or `gpu`, from `D2L_PROFILE` (default `gpu`) and `D2L_TINY`.

    Raises `ProfileError` for an unknown profile and for `D2L_TINY=1` with a `D2L_PROFILE`
    other than `tiny`.
    """
    raw = os.environ.get(PROFILE_ENV, "").strip()
    chosen = raw.lower()
    if chosen and chosen not in PROFILES:
        close = difflib.get_close_matches(chosen, PROFILES, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ProfileError(f"{PROFILE_ENV}={raw!r}: choose one of {', '.join(PROFILES)}{hint}")
    tiny = env_flag(TINY_ENV)
    if tiny and chosen and chosen != "tiny":
        raise ProfileError(f"{TINY_ENV}={os.environ[TINY_ENV]} asks for the tiny profile but "
                           f"{PROFILE_ENV}={raw} for {chosen}: unset one of them (D2L_TINY=1 is "
                           "short for D2L_PROFILE=tiny)")
    return "tiny" if tiny else chosen or DEFAULT_PROFILE


def tiny_profile() -> bool:
    """True in the tiny profile (`D2L_PROFILE=tiny` or `D2L_TINY=1`)."""
    return profile_name() == "tiny"


def choose(tiny: T, gpu: T, cpu: T = _MISSING) -> T:
    """The parameter cell's switch: `tiny` in the tiny profile, `gpu` in the gpu profile, and
    `cpu` in the cpu profile (an error when the chapter gives no cpu value yet)."""
    profile = profile_name()
    if profile == "tiny":
        return tiny
    if profile == "cpu":
        if cpu is _MISSING:
            raise ProfileError(f"{PROFILE_ENV}=cpu: this chapter has no cpu profile yet (its "
                               "parameter cell gives choose() no cpu= value). Use "
                               f"{PROFILE_ENV}=gpu (the original recipe) or tiny.")
        return cpu
    return gpu


def profile_precision() -> str:
    """The precision a chapter trains in: `auto` in the tiny and gpu profiles (the GPU, if any,
    decides), and in the cpu profile bf16 where the CPU computes it natively (1.7-1.8x faster
    per step, `benchmarks/cpu_precision.py`), else fp32 (`no`)."""
    if profile_name() != "cpu":
        return "auto"
    from .precision import cpu_has_native_bf16

    return "bf16" if cpu_has_native_bf16() else "no"


def data_dir() -> str | None:
    """`$D2L_DATA_DIR` (a folder in the GLUE/SNLI layout) for the cpu and gpu profiles; None means
    the hub. The tiny profile reads the built-in fixtures and ignores it (the banner says so).
    Raises `ProfileError` when the folder does not exist."""
    raw = os.environ.get(DATA_DIR_ENV, "").strip()
    if not raw or tiny_profile():
        return None
    if not os.path.isdir(raw):
        raise ProfileError(f"{DATA_DIR_ENV}={raw!r}: no such folder. Point it at a folder in the "
                           "GLUE/SNLI layout (e.g. DIR/SST-2/train.tsv, DIR/SNLI/"
                           "snli_1.0_train.txt), or unset it to read the hub.")
    return raw


# ---------------------------------------------------------------------------------------------
# Rehearsal caps


def rehearsal_caps() -> dict[str, int]:
    """The caps set in the environment, e.g. `{"max_steps": 2, "max_batch_size": 4}` (only the
    ones set; `{}` for a normal run). Raises `ProfileError` for a value that is not a positive
    integer."""
    caps = {}
    for var, key in CAP_ENV.items():
        if not (raw := os.environ.get(var, "").strip()):
            continue
        try:
            value = int(raw)
        except ValueError:
            value = 0
        if value < 1:
            raise ProfileError(f"{var}={os.environ[var]!r}: must be a positive integer (a cap "
                               f"for rehearsals), or unset")
        caps[key] = value
    return caps


def capped(value: int | None, cap: int | None) -> int | None:
    """`value` limited to `cap` (None on either side means no limit)."""
    if cap is None:
        return value
    return cap if value is None else min(value, cap)


def apply_caps(values: dict[str, Any], caps: dict[str, int] | None = None) -> dict[str, Any]:
    """Run options (a `RunArguments` as a dict, defaults filled in) limited by the caps.

    Batch sizes (train and eval) are capped by `max_batch_size`, every evaluation split by
    `max_eval_samples`, and training by `max_steps`: as `max_steps` for the library loop and the
    transformers Trainer (a recipe that saves checkpoints saves one within the cap too:
    `save_every_steps` is capped as well); fastNLP counts whole epochs, so it gets at most
    `max_steps` batches per epoch and only as many epochs as fit in `max_steps`.
    """
    caps = rehearsal_caps() if caps is None else caps
    if not caps:
        return values
    out = dict(values)
    for key in ("batch_size", "eval_batch_size"):
        if out.get(key) is not None:
            out[key] = capped(out[key], caps.get("max_batch_size"))
    out["max_eval_samples"] = capped(out.get("max_eval_samples"), caps.get("max_eval_samples"))
    steps = caps.get("max_steps")
    if steps is not None and out.get("trainer") == "fastnlp":
        per_epoch = out["train_batches_per_epoch"] = capped(out.get("train_batches_per_epoch"),
                                                            steps)
        if out.get("epochs") is not None:
            out["epochs"] = float(min(math.ceil(out["epochs"]), steps // per_epoch))
    elif steps is not None:
        out["max_steps"] = capped(out.get("max_steps"), steps)
        if out.get("save_every_steps") is not None:  # the recipe's checkpoint still happens
            out["save_every_steps"] = capped(out["save_every_steps"], steps)
    return out


def caps_note(caps: dict[str, int] | None = None) -> str:
    """One line naming the caps in force ('' when none), for banners and logs."""
    caps = rehearsal_caps() if caps is None else caps
    if not caps:
        return ""
    shown = ", ".join(f"{var}={caps[key]}" for var, key in CAP_ENV.items() if key in caps)
    return (f"REHEARSAL CAPS: {shown}. Every trainer stops early and evaluates on a subset: the "
            "numbers are a rehearsal of the pipeline, not results.")


# The testing hook of interruption tests: after step N (0: before any heavy import) a run prints
# "paused at step N" and waits for a signal, so a test kills or interrupts it at a known point.
PAUSE_ENV = "D2L_PAUSE_AT_STEP"


def check_environment() -> None:
    """Validate every setting the library reads from the environment at once (the profile
    switch, the rehearsal caps, the pause hook), so a bad value is one `ProfileError` naming the
    variable before any work: the CLI prints it as one `error:` line (exit 2)."""
    profile_name()
    rehearsal_caps()
    raw = os.environ.get(PAUSE_ENV, "").strip()
    if raw and not (raw.isascii() and raw.isdigit()):
        raise ProfileError(f"{PAUSE_ENV}={raw!r}: must be a step number (a testing hook), or "
                           "unset")
