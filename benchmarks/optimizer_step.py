"""One lever of the training loop, measured alone: the AdamW implementation.

Times `optimizer.step()` over the parameters of a real backbone for torch's three AdamW
implementations (a Python for-loop, `foreach`, `fused`) in one process, and prints a table and a
JSON line with the ratio of each to the for-loop. The library's loop uses `fused` on CPU and GPU.

    python benchmarks/optimizer_step.py --model minilm-l6 --steps 30

It needs no data. `--model tiny-bert --steps 1` checks in seconds that it runs (a tiny random
model: no measurement).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def time_steps(params: list[torch.nn.Parameter], steps: int, warmup: int = 3,
               **variant) -> float:
    """Mean seconds per AdamW step with the given implementation flags."""
    optimizer = torch.optim.AdamW(params, lr=1e-4, **variant)
    for p in params:
        p.grad = torch.randn_like(p) * 1e-3
    for _ in range(warmup):
        optimizer.step()
    if params[0].is_cuda:
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        optimizer.step()
    if params[0].is_cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    from d2l_utils.backbones import resolve_backbone
    from d2l_utils.methods import build_model, method_config
    from d2l_utils.tasks import get_task
    from d2l_utils.training.record import device_description

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6",
                        help="minilm-l6 (offline), tiny-bert, a hub id or a local folder; "
                             "random weights either way (speed only)")
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args(argv)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = build_model(resolve_backbone(args.model, random_init=True), get_task("sst2"),
                        method_config("full")).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    variants = {"for-loop": dict(foreach=False, fused=False),
                "foreach": dict(foreach=True, fused=False),
                "fused": dict(fused=True)}
    seconds = {name: time_steps(params, args.steps, **flags) for name, flags in variants.items()}
    base = seconds["for-loop"]
    print(f"AdamW step over {sum(p.numel() for p in params):,} parameters of {args.model} "
          f"on {device_description(device)}, {args.steps} steps each")
    print(f"{'implementation':<15}{'ms/step':>10}{'speed-up':>10}")
    for name, value in seconds.items():
        print(f"{name:<15}{value * 1e3:>10.1f}{base / value:>9.2f}x")
    print(json.dumps({"model": args.model, "device": device_description(device),
                      "torch": torch.__version__, "steps": args.steps,
                      "ms_per_step": {k: round(v * 1e3, 2) for k, v in seconds.items()},
                      "speedup_vs_for_loop": {k: round(base / v, 2)
                                              for k, v in seconds.items()}}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
