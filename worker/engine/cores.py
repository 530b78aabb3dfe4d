"""How many cores this process may use: the thread budget the worker splits and the kernel shares."""

from __future__ import annotations

import os


def machine_cores() -> int:
    """Cores this process may use (its CPU affinity where the OS tells, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1
