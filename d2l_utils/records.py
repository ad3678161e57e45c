"""Run records: one `record.json` per run, with the provenance every reported number needs."""

from __future__ import annotations

import json
import os
import platform
import resource
import shlex
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import torch

RECORD_FILE = "record.json"
TRACKED_PACKAGES = ("d2l-utils", "torch", "transformers", "peft", "adapters", "accelerate",
                    "datasets", "tokenizers", "numpy", "scikit-learn", "scipy")


def library_versions() -> dict[str, str]:
    """Installed versions of the packages a result depends on."""
    versions = {"python": platform.python_version()}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def device_description(device: torch.device) -> str:
    """A human-readable name of the hardware a run used."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def peak_memory_mb(device: torch.device) -> float:
    """Peak GPU memory allocated by tensors on CUDA; otherwise the process's peak RSS."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def command_line() -> str:
    """The command that started this process, quoted so it can be pasted back into a shell."""
    argv = list(sys.argv)
    if argv and argv[0].endswith(("__main__.py", "d2l_utils")):
        argv[0] = "python -m d2l_utils"
    return " ".join([argv[0]] + [shlex.quote(a) for a in argv[1:]])


def write_record(output_dir: str | os.PathLike, record: dict[str, Any]) -> Path:
    """Write `record.json` atomically (temporary file, then rename)."""
    path = Path(output_dir) / RECORD_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2, sort_keys=False) + "\n")
    os.replace(tmp, path)
    return path


def load_record(path: str | os.PathLike) -> dict[str, Any]:
    """Read a run record from a file or from the run's output directory."""
    path = Path(path)
    if path.is_dir():
        path = path / RECORD_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no run record here (a run writes {RECORD_FILE} when "
                                "it finishes)")
    return json.loads(path.read_text())


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# Real-run records kept in the repository, with their provenance (results/README.md says how each
# was made). Chapters and the book read results from here, never from a tiny smoke run.
RESULTS_DIR = Path(__file__).resolve().parent.parent / "results" / "records"


def committed_records(pattern: str = "*", results_dir: str | os.PathLike | None = None
                      ) -> list[dict[str, Any]]:
    """The committed real-run records whose file name matches `pattern` (sorted by name).

    Each record gains a `record_file` key naming the file it came from.
    """
    folder = Path(results_dir) if results_dir is not None else RESULTS_DIR
    records = []
    for path in sorted(folder.glob(f"{pattern}.json")):
        record = json.loads(path.read_text())
        record["record_file"] = path.name
        records.append(record)
    return records
