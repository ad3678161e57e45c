"""Under pytest-xdist (the README's `-n auto`), one torch thread per worker: the workers already
fill the cores, and two workers each running two threads on two cores spend the time waiting on
each other. Set here, before torch is imported, so the workers' notebook kernels and
subprocesses inherit it."""

import os

if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ["OMP_NUM_THREADS"] = "1"
