"""A built and served local hub mirror (tools/hub_mirror.py) for rehearsal tests.

`served_mirror(tmp)` builds the mirror into `tmp`, runs olah on 127.0.0.1 and, for as long as it
runs, points this process's environment at it: HF_ENDPOINT, D2L_ASSET_URL, HF_HOME in `tmp`, and
no *_OFFLINE variable (the test suite sets them). Libraries already imported keep the settings
they read at import time (huggingface_hub, datasets and transformers all do), so anything that
talks to the hub runs in a fresh process: `ServedMirror.python(...)` and `.run(...)`.

olah is installed once from PyPI into `$D2L_OLAH_VENV` (default ~/.cache/d2l_utils/olah-venv)
and reused by later runs.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tools.hub_mirror import asset_url, build_mirror, serve_mirror

ROOT = Path(__file__).resolve().parent.parent
OFFLINE_VARS = ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE", "TRANSFORMERS_OFFLINE", "D2L_OFFLINE")
# Cache locations that would win over HF_HOME.
CACHE_VARS = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_DATASETS_CACHE", "TRANSFORMERS_CACHE",
              "HF_ASSETS_CACHE", "HF_XET_CACHE", "D2L_CACHE_DIR")


def olah_venv() -> Path:
    return Path(os.environ.get("D2L_OLAH_VENV")
                or Path.home() / ".cache" / "d2l_utils" / "olah-venv")


@dataclass
class ServedMirror:
    root: Path  # build_mirror's OUT: mirrors/, mirror.json, olah-PORT.log
    endpoint: str  # HF_ENDPOINT
    asset_url: str  # D2L_ASSET_URL
    manifest: dict  # mirror.json

    def env(self, hf_home: Path) -> dict[str, str]:
        """This process's environment (pointed at the mirror) with its own, fresh HF_HOME."""
        return {**os.environ, "HF_HOME": str(hf_home), "D2L_CACHE_DIR": str(hf_home / "d2l"),
                "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                            os.environ.get("PYTHONPATH")]))}

    def run(self, args: list[str], hf_home: Path, timeout: float = 300
            ) -> subprocess.CompletedProcess:
        """Run `args` in ROOT with `env(hf_home)`; a failure shows the output's tail."""
        result = subprocess.run(args, cwd=ROOT, env=self.env(hf_home), capture_output=True,
                                text=True, timeout=timeout)
        assert result.returncode == 0, (f"{' '.join(args)} exited {result.returncode}:\n"
                                        f"{result.stdout[-3000:]}\n{result.stderr[-6000:]}")
        return result

    def python(self, code: str, hf_home: Path, timeout: float = 300):
        """Run `code` in a fresh interpreter; it must print one JSON value last, returned here."""
        result = self.run([sys.executable, "-c", textwrap.dedent(code)], hf_home, timeout)
        return json.loads(result.stdout.strip().splitlines()[-1])


@contextlib.contextmanager
def served_mirror(tmp: Path) -> Iterator[ServedMirror]:
    root = Path(tmp) / "mirror"
    build_mirror(root)
    manifest = json.loads((root / "mirror.json").read_text())
    with serve_mirror(root, venv=olah_venv()) as endpoint, pytest.MonkeyPatch.context() as mp:
        for var in OFFLINE_VARS + CACHE_VARS:
            mp.delenv(var, raising=False)
        mp.setenv("HF_ENDPOINT", endpoint)
        mp.setenv("D2L_ASSET_URL", asset_url(endpoint))
        mp.setenv("HF_HOME", str(Path(tmp) / "hf_home"))
        mp.setenv("TOKENIZERS_PARALLELISM", "false")
        yield ServedMirror(root, endpoint, asset_url(endpoint), manifest)
