"""One lever of evaluation, measured alone: dev batches in file order against length order.

Every metric of a GLUE task is free of the order of the examples, so the library evaluates in
length order, longest first (`preprocessing.eval_dataloader`): each batch then pads to nearly its
own examples' length. This script times `evaluate_model` on each real dev split both ways,
alternating them in one process, and prints the padded tokens, the seconds and the speed-up,
with the largest difference between the two orders' metrics (numerical noise only).

    python benchmarks/eval_order.py --data-dir ../shared/data/glue --tasks sst2 cola stsb [--bf16]

(`--data-dir` is a folder in the official GLUE layout.) Without it the script reads the tiny
fixture files the package ships (`d2l_utils.fixtures`): a check that it runs, not a measurement;
with `--model tiny-bert` (random weights) that check takes seconds.

Measured results: `benchmarks/RESULTS.md`, JSON lines in `benchmarks/eval_order.jsonl`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import time

import torch
from datasets import DatasetDict
from torch.utils.data import DataLoader


def padded_tokens(loader: DataLoader) -> int:
    """Tokens the model sees, padding included: each batch padded to its longest example."""
    return sum(batch["input_ids"].numel() for batch in loader)


def main(argv: list[str] | None = None) -> int:
    from d2l_utils.backbones import load_config, load_tokenizer, resolve_backbone
    from d2l_utils.data import load_task_data
    from d2l_utils.fixtures import FIXTURES_DIR
    from d2l_utils.methods import build_model, method_config
    from d2l_utils.precision import cpu_has_native_bf16
    from d2l_utils.preprocessing import eval_dataloader, make_collator, tokenize_splits
    from d2l_utils.tasks import get_task
    from d2l_utils.training.evaluate import evaluate_model
    from d2l_utils.training.record import device_description

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=str(FIXTURES_DIR),
                        help="a folder in the GLUE layout (default: the shipped fixtures)")
    parser.add_argument("--tasks", nargs="+", default=["sst2", "cola", "stsb"])
    parser.add_argument("--model", default="minilm-l6",
                        help="minilm-l6 (pretrained, offline), tiny-bert (random), a hub id or "
                             "a local folder")
    parser.add_argument("--batch-size", type=int, default=64, help="the loop's eval batch")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (native CPUs)")
    parser.add_argument("--repeats", type=int, default=2, help="timed passes per order")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    backbone = resolve_backbone(args.model)
    autocast = (torch.autocast("cpu", dtype=torch.bfloat16) if args.bf16
                else contextlib.nullcontext())
    rows = []
    for name in args.tasks:
        task = get_task(name)
        tokenizer = load_tokenizer(backbone, load_config(backbone, task))
        split = task.eval_splits[0]
        data = load_task_data(task, data_dir=args.data_dir)
        dev = tokenize_splits(DatasetDict({split: data[split]}), tokenizer, task, 128)[split]
        collate = make_collator(tokenizer)
        loaders = {"file order": DataLoader(dev, batch_size=args.batch_size, collate_fn=collate),
                   "length order": eval_dataloader(dev, args.batch_size, collate)}
        model = build_model(backbone, task, method_config("full")).eval()
        seconds: dict[str, list[float]] = {k: [] for k in loaders}
        metrics: dict[str, dict[str, float]] = {}
        with autocast:
            evaluate_model(model, loaders["file order"], task)  # warm-up, untimed
            for _ in range(args.repeats):  # alternate, so drifting load hits both alike
                for order, loader in loaders.items():
                    start = time.perf_counter()
                    metrics[order] = evaluate_model(model, loader, task)
                    seconds[order].append(time.perf_counter() - start)
        best = {order: min(s) for order, s in seconds.items()}
        rows.append({
            "task": name, "split": split, "examples": len(dev),
            "real_tokens": int(sum(dev["length"])),
            "padded_tokens": {k: padded_tokens(v) for k, v in loaders.items()},
            "seconds": {k: round(v, 2) for k, v in best.items()},
            "speedup": round(best["file order"] / best["length order"], 2),
            "max_metric_difference": max(abs(metrics["file order"][k] - metrics["length order"][k])
                                         for k in metrics["file order"])})
    device = device_description(torch.device("cpu"))
    precision = "bf16" if args.bf16 else "fp32"
    print(f"Evaluation of {args.model} (batch {args.batch_size}, {precision}) on {device}, native "
          f"bf16: {cpu_has_native_bf16()}; best of {args.repeats} passes per order")
    print(f"{'task':<6}{'examples':>9}{'padded tokens file / length':>30}{'s file':>8}"
          f"{'s length':>10}{'speed-up':>10}{'metric diff':>13}")
    for row in rows:
        pad = row["padded_tokens"]
        print(f"{row['task']:<6}{row['examples']:>9}"
              f"{pad['file order']:>18,} / {pad['length order']:>9,}"
              f"{row['seconds']['file order']:>8.2f}{row['seconds']['length order']:>10.2f}"
              f"{row['speedup']:>9.2f}x{row['max_metric_difference']:>13.1e}")
    print(json.dumps({"model": args.model, "device": device, "torch": torch.__version__,
                      "precision": precision, "batch_size": args.batch_size, "rows": rows}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
