"""One validation check's record, shared by every kind of check (torch-free)."""

from __future__ import annotations

import os
import platform as host
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


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
    return {
        "os": f"{host.system()} {host.release()}",
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": host.python_version(),
    }
