"""One validation check's record, shared by every kind of check (torch-free)."""

from __future__ import annotations

import os
import platform as host
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

Progress = Callable[[str], None]  # one line per stage, for the user


@dataclass
class Check:
    artifact: str
    kind: str  # integrity | manifest | size | parity | streaming | latency
    name: str
    passed: bool
    value: float | None
    threshold: float | None
    runtime: str
    unit: str = ""
    reason: str = ""  # why it failed (or what was not measured)
    details: dict[str, Any] = field(default_factory=dict)


def not_run(entry: dict[str, Any], kind: str, name: str, reason: str) -> Check:
    """A failing check for a model the check could not run on (missing, damaged, unsupported)."""
    return Check(entry["path"], kind, name, False, None, None, "not run", reason=reason)


def machine_summary() -> dict[str, Any]:
    cpu = host.processor() or host.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"os": f"{host.system()} {host.release()}", "cpu": cpu, "cores": os.cpu_count(),
            "python": host.python_version()}  # fmt: skip


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
    """A deliberate thread count: never more than the free cores (load from other jobs makes extra
    threads wait on each other: torch's two threads ran 8x slower than one on a loaded 2-core host).
    The choice is printed through `progress`."""
    free = free_cores()
    threads = max(1, min(wanted, free))
    if progress is not None:
        progress(f"threads: {threads} for {what} ({free} of {usable_cores()} cores free)")
    return threads


def short(exc: BaseException, limit: int = 300) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[:limit] + "..."
