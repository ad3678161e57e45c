"""Estimate the Colab T4 time of every chapter's real run: the command-line view of the budget.

    python benchmarks/time_budget.py [--mfu M] [--peak-tflops 65] [--step-overhead 0.03]
                                     [--session-hours 12] [--data-dir DIR | --stored-tokens]
                                     [--pad-to L] [--chapter N]

Prints markdown tables: one row per real run, then the total per chapter, the notes and the
anchor check (or, with --chapter N, the estimate that chapter N prints in its header). The
model, its assumptions and the chapters' recipes live in `d2l_utils.pages.time_budget`, which
the book's Time budget page and the chapters' header cells read too.
"""

from __future__ import annotations

import sys

from d2l_utils.pages.time_budget import main

if __name__ == "__main__":
    sys.exit(main())
