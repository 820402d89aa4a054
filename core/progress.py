"""How long work reports its stages: a callable that takes one line for the user (torch-free)."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]  # one line per stage, for the user
