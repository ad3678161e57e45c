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
import json
import random
import sys
from pathlib import Path

REQUIRED = ("gold_label", "sentence1", "sentence2")


class SplitError(ValueError):
    """A source file that cannot be split; the message names the file (and line)."""


def read_rows(source: Path) -> list[dict[str, str]]:
    """The labelled rows of a tab-separated SNLI file, read as written (no quoting: a `"` or a
    `\\` is just a character); every row must have exactly the header's fields."""
    try:
        text = source.read_bytes().decode("utf-8")
    except UnicodeDecodeError as err:
        raise SplitError(f"{source}: not valid UTF-8 ({err.reason} at byte {err.start}); "
                         "re-save the file as UTF-8") from None
    lines = text.lstrip("\ufeff").removesuffix("\n").split("\n")
    header = lines[0].removesuffix("\r").split("\t")
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise SplitError(f"{source}: no column {', '.join(missing)} in the header {header}; "
                         "expected SNLI's tab-separated layout")
    rows = []
    for number, line in enumerate(lines[1:], start=2):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        fields = line.split("\t")
        if len(fields) != len(header):
            raise SplitError(f"{source}:{number}: found {len(fields)} tab-separated fields, "
                             f"expected {len(header)} (as the header)")
        row = dict(zip(header, fields))
        if row["gold_label"] not in ("-", ""):
            rows.append(row)
    return rows


def split_file(source: Path, target: Path, dev: int, test: int, seed: int) -> dict:
    """Write the three splits under `target/SNLI` and a `split.json` that says how."""
    if dev < 1 or test < 1:
        raise SplitError(f"--dev {dev} --test {test}: each split needs at least one pair")
    rows = read_rows(source)
    if dev + test >= len(rows):
        raise SplitError(f"{source}: {len(rows):,} labelled pairs, too few for --dev {dev} "
                         f"--test {test} and a training split")
    random.Random(seed).shuffle(rows)
    splits = {"test": rows[:test], "dev": rows[test:test + dev], "train": rows[test + dev:]}
    folder = target / "SNLI"
    folder.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():  # every field exactly as read (it holds no tab or newline)
        lines = ["\t".join(REQUIRED)] + ["\t".join(row[c] for c in REQUIRED) for row in part]
        (folder / f"snli_1.0_{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    info = {"source": source.name, "seed": seed,
            "sizes": {name: len(part) for name, part in splits.items()},
            "how": f"seeded shuffle (random.Random({seed})) of the labelled pairs of "
                   f"{source.name}; the first {test} are test, the next {dev} dev, the rest "
                   "train"}
    (folder / "split.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def positive(text: str) -> int:
    """argparse type: an integer of at least 1 (a split is never empty)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1 (a split is never empty), got "
                                         f"{value}")
    return value


def main(argv: list[str] | None = None) -> int:
    """Exit 0 done, 2 a bad argument (one `error:` line), 1 a source file that cannot be
    split (one `error:` line naming it)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("source", type=Path, help="a labelled SNLI .txt file (e.g. the dev set)")
    parser.add_argument("target", type=Path, help="folder to write SNLI/ into")
    parser.add_argument("--dev", type=positive, default=1000)
    parser.add_argument("--test", type=positive, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    problem = (f"{args.source}: no such file" if not args.source.is_file() else
               f"{args.target}: not a folder" if args.target.exists()
               and not args.target.is_dir() else
               f"{args.target / 'SNLI'}: not a folder" if (args.target / "SNLI").exists()
               and not (args.target / "SNLI").is_dir() else None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    try:
        print(json.dumps(split_file(args.source, args.target, args.dev, args.test, args.seed)))
    except (SplitError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
