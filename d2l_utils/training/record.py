"""Run records: one `record.json` per run, with the provenance every reported number needs."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
import torch.nn as nn

from ..metrics import format_metrics
from ..profiles import rehearsal_caps
from .clipping import clipping_note
from .saving import write_text_atomic

if TYPE_CHECKING:
    from .prepare import PreparedRun

RECORD_FILE = "record.json"
TRACKED_PACKAGES = ("d2l-utils", "torch", "transformers", "peft", "adapters", "accelerate",
                    "datasets", "tokenizers", "numpy", "scikit-learn", "scipy", "FastNLP")


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
    try:
        import resource  # POSIX only
    except ImportError:  # Windows: no peak RSS without psutil; nothing else in a run needs it
        return float("nan")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024  # bytes on macOS, else KiB


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
    write_text_atomic(path, json.dumps(record, indent=2, sort_keys=False) + "\n")
    return path


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


@dataclass
class TrainResult:
    """What every trainer (the loop, the HF Trainer, fastNLP) reports; `build_record` reads it."""

    history: list[dict[str, Any]]  # one entry per epoch (and per evaluation of the Trainer)
    loss_log: list[tuple[int, float]]
    steps: int
    epochs_run: float
    train_time_s: float
    train_examples: int | None  # None when unknown (a resumed HF Trainer run)
    train_tokens: int | None
    device: str
    num_processes: int
    mixed_precision: str
    peak_memory_mb: float
    eval_log: list[dict[str, Any]] = field(default_factory=list)
    resumed_from: str | None = None
    data_changed: list[str] = field(default_factory=list)  # on resume (--allow-data-change)
    rank_weight_digests: list[str] = field(default_factory=list)
    # split -> {"predictions": [...], "labels": [...]} of the last evaluation (the loop's)
    predictions: dict[str, dict[str, list]] = field(default_factory=dict)
    precision_note: str = ""
    is_main_process: bool = True
    wall_time_s: float = 0.0
    model: nn.Module | None = field(default=None, repr=False)  # the trained (unwrapped) model


def build_record(run: PreparedRun, result: TrainResult) -> dict[str, Any]:
    """The run record: results plus everything needed to know where they came from."""
    args, task = run.args, run.task
    main_split = task.eval_splits[0]
    # split -> metric -> value, after the last step (every trainer's last history entry)
    metrics = {split: result.history[-1][split] for split in task.eval_splits}
    train_time = max(result.train_time_s, 1e-9)
    record = {
        "task": task.name, "method": run.method.name, "model": args.model,
        "pretrained": run.backbone.pretrained, "profile": args.profile, "trainer": args.trainer,
        "caps": rehearsal_caps(),  # D2L_MAX_STEPS & co.: a capped run is a rehearsal, no result
        "data": {"source": run.data_source,
                 "train_examples": len(run.data["train"]),
                 "eval_examples": {s: len(run.data[s]) for s in task.eval_splits},
                 "fingerprint": run.data_fingerprint,
                 **({"changed_on_resume": result.data_changed} if result.data_changed
                    else {})},
        "main_metric": {"name": task.main_metric, "split": main_split,
                        "value": metrics[main_split][task.main_metric]},
        "metrics": metrics,
        "history": result.history,
        "loss_log": result.loss_log,
        "eval_log": result.eval_log,
        "params": run.params,
        "method_config": run.method.to_dict(),
        "steps": result.steps, "epochs_run": result.epochs_run,
        "wall_time_s": result.wall_time_s, "train_time_s": result.train_time_s,
        "train_examples_per_s": _rate(result.train_examples, train_time),
        "train_tokens_per_s": _rate(result.train_tokens, train_time),
        "peak_memory_mb": result.peak_memory_mb,
        "device": result.device, "num_processes": result.num_processes,
        "rank_weight_digests": result.rank_weight_digests,
        "resumed_from": result.resumed_from,
        "mixed_precision": result.mixed_precision,
        "gradient_clipping": clipping_note(args.trainer, args.max_grad_norm),
        "seed": args.seed, "command": command_line(), "args": asdict(args),
        "versions": library_versions(), "tokenizer_note": run.backbone.tokenizer_note,
        "finished_at": timestamp(), "cpu_count": os.cpu_count(),
    }
    if result.precision_note:
        record["precision_note"] = result.precision_note
    if result.predictions:  # per example, for paired comparisons (`d2l_utils.stats`)
        record["predictions"] = result.predictions
    return record


def _rate(count: int | None, seconds: float) -> float | None:
    return None if count is None else round(count / seconds, 2)


def summary_line(record: dict[str, Any]) -> str:
    """One line that says what ran and how well, for the end of a run."""
    main = record["main_metric"]
    params = record["params"]
    tag = " [tiny profile: smoke run, not a result]" if record["profile"] == "tiny" else ""
    if record.get("caps"):
        tag += " [rehearsal caps: not a result]"
    score = format_metrics({main["name"]: main["value"],
                            "undefined": record["metrics"][main["split"]].get("undefined", {})})
    rate = record["train_examples_per_s"]
    return (f"{record['task']} | {record['method']} | {record['model']}: {main['split']} "
            f"{score} | trainable {params['trainable']:,} of "
            f"{params['total']:,} ({params['trainable_percent']:.2f}%) | "
            f"{record['wall_time_s']:.1f} s, "
            f"{'ex/s n/a (resumed run)' if rate is None else f'{rate:.1f} ex/s'} | "
            f"record: {record['args']['output_dir']}/record.json{tag}")
