"""Build an SNLI folder (`SNLI/snli_1.0_{train,dev,test}.txt`) from one labelled SNLI file.

The book's cpu-profile records for SNLI (chapters 1 and 3) were made where only the 9,842 real
SNLI *dev* pairs were at hand. This script splits such a file, seeded, into train / dev / test
(default 1,000 dev and 1,000 test pairs, the rest train) and writes them in SNLI's own layout,
so a chapter reads them with `D2L_DATA_DIR` like the official release. Numbers from this split
are not comparable with SNLI's official test accuracy; the records say which split they used.

    python tools/snli_split.py ../shared/data/snli/snli_1.0_dev.txt DATA/ --dev 1000 --test 1000
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
from pathlib import Path

REQUIRED = ("gold_label", "sentence1", "sentence2")


def split_file(source: Path, target: Path, dev: int, test: int, seed: int) -> dict:
    """Write the three splits under `target/SNLI` and a `split.json` that says how."""
    with open(source, newline="", encoding="utf-8") as file:
        reader = csv.DictReader(file, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in REQUIRED if c not in (reader.fieldnames or [])]
        if missing:
            raise SystemExit(f"{source}: no column {', '.join(missing)} in the header "
                             f"{reader.fieldnames}; expected SNLI's tab-separated layout")
        rows = [row for row in reader if row["gold_label"] not in ("-", "")]
    if dev + test >= len(rows):
        raise SystemExit(f"{source}: {len(rows):,} labelled pairs, too few for --dev {dev} "
                         f"--test {test} and a training split")
    random.Random(seed).shuffle(rows)
    splits = {"test": rows[:test], "dev": rows[test:test + dev], "train": rows[test + dev:]}
    folder = target / "SNLI"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        with open(folder / f"snli_1.0_{name}.txt", "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file, delimiter="\t", quoting=csv.QUOTE_NONE, escapechar="\\",
                                lineterminator="\n")
            writer.writerow(REQUIRED)
            writer.writerows([row[c] for c in REQUIRED] for row in part)
    info = {"source": source.name, "seed": seed,
            "sizes": {name: len(part) for name, part in splits.items()},
            "how": f"seeded shuffle (random.Random({seed})) of the labelled pairs of "
                   f"{source.name}; the first {test} are test, the next {dev} dev, the rest "
                   "train"}
    (folder / "split.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a labelled SNLI .txt file (e.g. the dev set)")
    parser.add_argument("target", type=Path, help="folder to write SNLI/ into")
    parser.add_argument("--dev", type=int, default=1000)
    parser.add_argument("--test", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if not args.source.is_file():
        raise SystemExit(f"{args.source}: no such file")
    print(json.dumps(split_file(args.source, args.target, args.dev, args.test, args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
