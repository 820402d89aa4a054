"""Thread counts chosen deliberately: never more threads than free cores (torch-free).

On a loaded 2-core host torch's default two threads made a full-file `a2bs infer` 8x slower than one
thread (CPU time 14 s -> 140 s): extra threads wait on each other and on the other jobs."""

from __future__ import annotations

import os

from a2bs.core.progress import Progress


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), not the machine's count."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def free_cores() -> int:
    """Usable cores minus those other processes keep busy: the 1-minute load average, less the one
    this process itself accounts for. At least 1."""
    usable = usable_cores()
    try:
        others = max(0.0, os.getloadavg()[0] - 1.0)
    except (OSError, AttributeError):
        others = 0.0
    return max(1, min(usable, round(usable - others)))


def choose_threads(wanted: int, what: str, progress: Progress | None = None) -> int:
    """At most `wanted` threads and never more than the free cores; the choice is printed through
    `progress` so a slow run can be read."""
    free = free_cores()
    threads = max(1, min(wanted, free))
    if progress is not None:
        progress(f"threads: {threads} for {what} ({free} of {usable_cores()} cores free)")
    return threads


def set_torch_threads(what: str, progress: Progress | None = None, wanted: int | None = None) -> int:
    """Give torch a deliberate intra-op thread count: `wanted`, else $OMP_NUM_THREADS when the user set it,
    else every usable core; capped by the free cores."""
    import torch

    threads = choose_threads(wanted or omp_threads() or usable_cores(), what, progress)
    torch.set_num_threads(threads)
    return threads


def omp_threads() -> int | None:
    """$OMP_NUM_THREADS when the user (or a batch worker) set it to a positive number."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None
