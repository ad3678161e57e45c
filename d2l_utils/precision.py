"""Which floating-point precision to train in, decided from the GPU that is actually there.

    resolve_precision("auto")      # "fp16" on a T4 or V100, "bf16" on an A100/L4/H100, "no" on CPU
    resolve_precision("bf16")      # also on a CPU with native bf16 (AVX512-BF16 or AMX), if asked
    hf_precision_kwargs("auto")    # {"fp16": ..., "bf16": ...} for transformers' TrainingArguments
    fastnlp_precision("auto")      # (fp16: bool, note for the run record) for fastNLP 1.0.1

The choices are accelerate's names: `no` (fp32), `fp16` (float16 autocast with a gradient scaler:
accelerate and the HF Trainer add the scaler themselves), `bf16` (bfloat16 autocast, no scaler).

bf16 is used only where the GPU does it natively, from compute capability 8.0 (Ampere) up.
`torch.cuda.is_bf16_supported()` is deliberately not consulted: since torch 2.3 it returns True on
a T4 (7.5) too, because it counts emulation, and emulated bf16 is several times slower than fp16
there. The capability from `torch.cuda.get_device_capability()` decides.

On a CPU, `auto` is always fp32, so a run gives the same numbers on every machine. An explicit
`bf16` is allowed where the CPU computes bf16 natively (AVX512-BF16 or AMX tiles: recent Xeon and
EPYC servers), where bfloat16 autocast trains MiniLM 1.7-1.8x faster per step
(`benchmarks/cpu_precision.py`); elsewhere it is an error.
"""

from __future__ import annotations

CHOICES = ("auto", "no", "fp16", "bf16")
NATIVE_BF16 = (8, 0)  # compute capability from which bf16 runs on tensor cores (Ampere)


class PrecisionError(ValueError):
    """A precision the hardware here cannot run (or a name that is not a precision)."""


def _gpu() -> tuple[str, tuple[int, int]] | None:
    """(description: name and compute capability, the capability) of the current CUDA device,
    or None without one."""
    import torch

    if not torch.cuda.is_available():
        return None
    major, minor = torch.cuda.get_device_capability()
    return (f"{torch.cuda.get_device_name()} (compute capability {major}.{minor})",
            (int(major), int(minor)))


def cpu_has_native_bf16() -> bool:
    """True where this CPU computes bfloat16 natively (AVX512-BF16 or AMX tiles)."""
    import torch

    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def resolve_precision(choice: str = "auto") -> str:
    """`no`, `fp16` or `bf16` for this machine, from `choice` (auto|no|fp16|bf16): `auto` is bf16
    on a GPU of compute capability 8.0 or more, fp16 below it (T4, V100), fp32 without a GPU.
    An explicit choice this hardware cannot run natively (fp16 without a GPU; bf16 below 8.0, or
    on a CPU without `cpu_has_native_bf16`) is a `PrecisionError`, never a silent fallback: the
    run record and timings would not be what was asked for."""
    if choice not in CHOICES:
        raise PrecisionError(f"precision must be one of {', '.join(CHOICES)}, not {choice!r}")
    if choice == "no":
        return "no"
    gpu = _gpu()
    if gpu is None:
        if choice == "auto":
            return "no"
        if choice == "bf16":
            if cpu_has_native_bf16():
                return "bf16"
            raise PrecisionError(
                "bf16 without a GPU needs a CPU with native bfloat16 (AVX512-BF16 or AMX), and "
                "this one would only emulate it: use --mixed-precision auto or no (fp32)")
        raise PrecisionError(
            f"{choice} needs a CUDA GPU and none is available here: use --mixed-precision auto "
            "or no (fp32) on CPU")
    native_bf16 = gpu[1] >= NATIVE_BF16
    if choice == "auto":
        return "bf16" if native_bf16 else "fp16"
    if choice == "bf16" and not native_bf16:
        raise PrecisionError(
            f"bf16 is not native on {gpu[0]}: it needs compute capability 8.0 or more "
            "(A100, L4, H100) and would only be emulated here; use --mixed-precision fp16 "
            "(or auto)")
    return choice


def hf_precision_kwargs(choice: str = "auto") -> dict[str, bool]:
    """`{"fp16": ..., "bf16": ...}` for `transformers.TrainingArguments` (both False: fp32), and
    `use_cpu: True` for bf16 on a CPU: without it `TrainingArguments` refuses bf16 as a GPU's."""
    resolved = resolve_precision(choice)
    kwargs = {"fp16": resolved == "fp16", "bf16": resolved == "bf16"}
    return {**kwargs, "use_cpu": True} if resolved == "bf16" and _gpu() is None else kwargs


def fastnlp_precision(choice: str = "auto") -> tuple[bool, str]:
    """(fp16, note) for fastNLP 1.0.1's `Trainer(fp16=...)`; the note goes into the run record.

    fastNLP 1.0.1 knows fp16 only, so every GPU gets fp16 (also where `auto` would pick bf16 for
    the other methods, and for an explicit `bf16`, which is first checked like everywhere else),
    unless fp32 (`no`) was asked for. Without a GPU: fp32.
    """
    resolved, gpu = resolve_precision(choice), _gpu()
    if gpu is None:
        if resolved != "no":
            raise PrecisionError("fastNLP 1.0.1 knows fp16 only, and fp16 needs a GPU: use "
                                 "--mixed-precision auto or no (fp32) on CPU")
        return False, "fp32 on CPU"
    if resolved == "no":
        return False, f"fp32 as requested on {gpu[0]}"
    instead = " instead of bf16" if resolved == "bf16" else ""
    return True, f"fastNLP 1.0.1 supports fp16 only: fp16{instead} on {gpu[0]}"
