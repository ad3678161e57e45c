"""benchmarks/gpu_check.py's JSON as the tables the book pages and SUMMARY.md show.

Light on purpose (pandas, no torch): the Benchmarks and Time budget pages import it at every
book build. The names of the bench's four ways and of the precisions live here, and
`benchmarks/bench.py` takes them from here.
"""

from __future__ import annotations

from typing import Any

WAYS = ("fixed_padding", "hf_trainer", "hf_trainer_grouped", "library_loop")
WAY_TITLES = {"fixed_padding": "fixed padding", "hf_trainer": "hf trainer",
              "hf_trainer_grouped": "hf trainer + group_by_length",
              "library_loop": "library loop"}
PRECISION_NAMES = {"no": "fp32", "fp16": "fp16", "bf16": "bf16"}
PART_TITLES = {"bench": "throughput (four ways)", "precision": "fp32 / fp16 / bf16",
               "resume": "kill -9 and resume", "chapter": "chapter 5 (rehearsal caps)"}


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def _tflops(value: float | None) -> str:
    return "" if value is None else f"{value / 1e12:,.1f}"


def _rates(way: dict[str, Any]) -> dict[str, str]:
    """A way's (or precision run's) measurements as the book's tables show them."""
    return {"examples/s": f"{way['examples_per_s']:,.1f}",
            "real tokens/s": f"{way['tokens_per_s']:,.0f}",
            "peak memory MB": f"{way['peak_memory_mb']:,.0f}"}


def _check_result(name: str, summary: dict[str, Any]) -> str:
    """One line on what a part of the check found."""
    if name == "bench":
        return f"{len(summary.get('bench', []))} jobs x 4 ways"
    if name == "precision":
        runs = summary.get("precision", {}).get("runs", [])
        return ", ".join(sorted({PRECISION_NAMES[r["precision"]] for r in runs}))
    if name == "resume":
        resume = summary.get("resume", {})
        if "max_metric_difference" not in resume:
            return ""
        return (f"killed after step {resume['killed_after_step']} of {resume['steps']}; "
                f"largest metric difference {resume['max_metric_difference']:.3g}, "
                f"weights {resume['max_weight_difference']:.3g}")
    chapter = summary.get("chapter", {})
    records = chapter.get("records", [])
    if not records:
        return ""
    devices = sorted({r["device"] for r in records})
    return (f"{chapter.get('profile')} profile: {len(records)} runs in "
            f"{chapter.get('seconds', 0):.0f} s on {', '.join(devices)}")


def gpu_check_tables(summary: dict[str, Any]) -> list[Any]:
    """The check's JSON as four pandas DataFrames (each titled in `.attrs["title"]`): the
    device and its peaks, the four ways per job, the precisions, and the checks."""
    import pandas as pd

    peaks, precisions = summary["peaks"], summary["precisions"]
    settings = summary["settings"]
    device = [
        ("device", summary["device_name"]),
        ("compute capability", summary.get("compute_capability") or ""),
        ("model, data", f"{settings['model']} (random weights), {settings['data']}"),
        ("batch, timed steps", f"{settings['batch_size']}, {settings['steps']} (after "
                               f"{settings['untimed_steps']} untimed)"),
        ("precision the library picks", PRECISION_NAMES[precisions["picked"]]),
        ("datasheet peak, TFLOP/s (dense 16-bit)", _tflops(peaks.get("datasheet")) or "unknown"),
        *((f"measured {PRECISION_NAMES[p]} matmul, TFLOP/s", _tflops(flops))
          for p, flops in peaks["matmul"].items()),
        ("check took", f"{summary.get('total_seconds', 0):.0f} s"
                       + ("" if summary.get("complete") else " (incomplete)")),
    ]
    throughput = [
        {"task": job["task"], "method": job["method"], "way": WAY_TITLES[name],
         "precision": PRECISION_NAMES.get(job[name].get("precision", ""), ""),
         **_rates(job[name]), "FLOPs/token": f"{job['flops_per_param']:.3g}N",
         "MFU (measured peak)": _pct(job[name].get("mfu")),
         "MFU (datasheet)": _pct(job[name].get("mfu_datasheet"))}
        for job in summary.get("bench", []) for name in WAYS]
    precision = [
        {"precision": PRECISION_NAMES[run["precision"]]
         + (" (picked)" if run["precision"] == precisions["picked"] else ""),
         "way": WAY_TITLES[run["way"]], **_rates(run),
         "x fp32": f"{run['speedup_vs_fp32']:.2f}" if "speedup_vs_fp32" in run else "",
         "steps the fp16 scaler skipped": str(run.get("skipped_steps", 0)),
         "MFU (measured peak)": _pct(run.get("mfu")),
         "MFU (datasheet)": _pct(run.get("mfu_datasheet"))}
        for run in summary.get("precision", {}).get("runs", [])]
    checks = [{"part": PART_TITLES[name], "status": part["status"],
               "result": "; ".join(filter(None, [
                   _check_result(name, summary) if part["status"] != "skipped" else "",
                   part.get("reason")])),
               "seconds": f"{part['seconds']:.0f}"}
              for name, part in summary.get("parts", {}).items()]
    frames = [pd.DataFrame(device, columns=["", "value"]), pd.DataFrame(throughput),
              pd.DataFrame(precision), pd.DataFrame(checks)]
    for frame, title in zip(frames, ("Device and peaks", "Throughput: the four ways",
                                     "Precision", "Checks")):
        frame.attrs["title"] = title
    return frames
