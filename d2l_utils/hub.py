"""Fail fast when a download host cannot be reached, instead of hanging on retries."""

from __future__ import annotations

import os
import socket
import urllib.parse

# Any of these set to 1/true/yes/on means: do not try the network at all.
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "D2L_OFFLINE")


def offline_reason(url: str | None = None, timeout: float = 5.0) -> str | None:
    """Why `url` (default: the Hugging Face hub) cannot be reached, found within `timeout`
    seconds; None when its host answers. A `file://` URL needs no network."""
    url = url or os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parts = urllib.parse.urlparse(url)
    if parts.scheme == "file":
        return None
    for var in OFFLINE_VARS:
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return f"{var} is set"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        socket.create_connection((parts.hostname, port), timeout=timeout).close()
    except OSError as err:
        return f"{parts.hostname} is not reachable ({type(err).__name__})"
    return None
