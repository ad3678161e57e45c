"""One lever of the training loop, measured alone: bfloat16 autocast against fp32 on a CPU.

Times full training steps (forward, backward, fused AdamW) of a real backbone on batches of
random token ids at a few sequence lengths, in fp32 and under `torch.autocast("cpu",
torch.bfloat16)`, alternating the two in one process, and prints a table and a JSON line with
bf16's speed-up over fp32 at each length. On CPUs without native bf16 (no AVX512-BF16 or AMX)
bf16 is emulated and slower; the library refuses it there (`d2l_utils.precision`).

    python benchmarks/cpu_precision.py --model minilm-l6 --lengths 16 32 64 --steps 8

It needs no data. `--model tiny-bert --lengths 8 --batch-size 2 --steps 1` checks in seconds
that it runs (a tiny random model: no measurement).
"""

from __future__ import annotations

import argparse
import json
import time

import torch


def seconds_per_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                     batch: dict[str, torch.Tensor], steps: int, bf16: bool) -> float:
    """Mean seconds of one training step, after one untimed step."""
    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def main(argv: list[str] | None = None) -> int:
    from d2l_utils.backbones import resolve_backbone
    from d2l_utils.methods import build_model, method_config
    from d2l_utils.precision import cpu_has_native_bf16
    from d2l_utils.tasks import get_task
    from d2l_utils.training.record import device_description

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="minilm-l6",
                        help="minilm-l6 (offline), tiny-bert, a hub id or a local folder; "
                             "random weights either way (speed only)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64],
                        help="tokens per example ([CLS] and [SEP] included)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=8, help="timed steps per precision, twice")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = build_model(resolve_backbone(args.model, random_init=True), get_task("sst2"),
                        method_config("full"))
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-5, fused=True)
    rows = []
    for length in args.lengths:
        batch = {"input_ids": torch.randint(1000, 20000, (args.batch_size, length)),
                 "attention_mask": torch.ones(args.batch_size, length, dtype=torch.long),
                 "labels": torch.randint(0, 2, (args.batch_size,))}
        # fp32, bf16, fp32, bf16: drifting load on the machine hits both alike
        times = {"fp32": [], "bf16": []}
        for _ in range(2):
            for name in times:
                times[name].append(seconds_per_step(model, optimizer, batch, args.steps,
                                                    bf16=name == "bf16"))
        fp32, bf16 = (min(times[name]) for name in ("fp32", "bf16"))
        rows.append({"length": length, "fp32_examples_per_s": round(args.batch_size / fp32, 1),
                     "bf16_examples_per_s": round(args.batch_size / bf16, 1),
                     "bf16_speedup": round(fp32 / bf16, 2)})
    device = device_description(torch.device("cpu"))
    print(f"Training steps of {args.model} (full fine-tuning, batch {args.batch_size}) on "
          f"{device}, native bf16: {cpu_has_native_bf16()}; best of 2 x {args.steps} steps")
    print(f"{'tokens':>7}{'fp32 ex/s':>11}{'bf16 ex/s':>11}{'bf16 / fp32':>13}")
    for row in rows:
        print(f"{row['length']:>7}{row['fp32_examples_per_s']:>11.1f}"
              f"{row['bf16_examples_per_s']:>11.1f}{row['bf16_speedup']:>12.2f}x")
    print(json.dumps({"model": args.model, "device": device, "torch": torch.__version__,
                      "native_bf16": cpu_has_native_bf16(), "batch_size": args.batch_size,
                      "steps": args.steps, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
