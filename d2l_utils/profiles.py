"""The profile switch every chapter and run shares: which data, model and budget to use.

`D2L_TINY=1` switches a notebook to the tiny profile (built-in fixtures, a tiny or packaged model,
a few steps: offline, seconds). With nothing set, the notebook does the real run of its chapter.
"""

from __future__ import annotations

import os
from typing import TypeVar

TINY_ENV = "D2L_TINY"
T = TypeVar("T")


def tiny_profile() -> bool:
    """True when `D2L_TINY` is set to anything but empty/0/false."""
    return os.environ.get(TINY_ENV, "").strip().lower() not in ("", "0", "false", "no")


def profile_name() -> str:
    return "tiny" if tiny_profile() else "real"


def choose(tiny: T, real: T) -> T:
    """The tiny or the real value, by the profile: the one switch every parameter cell uses."""
    return tiny if tiny_profile() else real
