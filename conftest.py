"""Under pytest-xdist (the README's `-n auto`), one torch thread per worker unless
OMP_NUM_THREADS says otherwise: the workers already fill the cores, and two workers running two
threads each on two cores wait on each other (the suite took 290 s that way, 154 s with one
thread each). Set here, before torch is imported, so that the workers' notebook kernels and
subprocesses inherit it."""

import os

if "PYTEST_XDIST_WORKER" in os.environ:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
