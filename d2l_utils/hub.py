"""Fail fast when the Hugging Face hub cannot be reached, instead of hanging on retries."""

from __future__ import annotations

import os


def offline_reason(timeout: float = 5.0) -> str | None:
    """Why the hub cannot be reached, found within `timeout` seconds; None when it answers."""
    for var in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return f"{var} is set"
    import requests

    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    try:
        requests.head(endpoint, timeout=timeout)
    except requests.RequestException as err:
        return f"{endpoint} is not reachable ({type(err).__name__})"
    return None
