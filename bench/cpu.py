"""Which part of a running benchmark uses the machine's CPU: each part's process and all its
descendants, from /proc (Linux).

A target not met on a machine whose cores are all busy is bound by CPU; the shares then tell
which part to make cheaper.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True, slots=True)
class CpuShares:
    """Cores each part used over `seconds`, and the machine's."""

    parts: dict[str, float]
    machine: float
    seconds: float

    def describe(self) -> str:
        cores = os.cpu_count() or 1
        listed = ", ".join(
            f"{name} {used:.2f}" for name, used in sorted(self.parts.items(), key=lambda p: -p[1])
        )
        outside = max(0.0, self.machine - sum(self.parts.values()))
        return (
            f"{self.machine:.2f} of {cores} cores busy ({100 * self.machine / cores:.0f}%): "
            f"{listed}; {outside:.2f} outside these (the kernel's own work, anything else)"
        )


def _processes() -> dict[int, tuple[int, float]]:
    """Each live process's parent and the CPU seconds it has used so far."""
    table: dict[int, tuple[int, float]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # After "pid (comm)": state ppid … utime stime (fields 3, 4 … 14, 15).
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # exited meanwhile
        table[int(stat.parent.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / TICK)
    return table


def _machine_busy() -> float:
    """CPU seconds the whole machine has spent busy (not idle or waiting for I/O)."""
    fields = [int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / TICK


class CpuMeter:
    """CPU by part between `start()` and `stop()`: `roots` maps a part's name to the pids
    whose trees it is (a process and all it started), `alone` to pids counted without their
    children (the benchmark's own process, which started everything)."""

    def __init__(
        self, roots: Mapping[str, list[int]], alone: Mapping[str, list[int]] | None = None
    ) -> None:
        self.roots = roots
        self.alone = alone or {}
        self._before: dict[str, float] = {}
        self._machine = 0.0
        self._started = 0.0

    def _by_part(self) -> dict[str, float]:
        table = _processes()
        children: dict[int, list[int]] = {}
        for pid, (parent, _) in table.items():
            children.setdefault(parent, []).append(pid)
        used: dict[str, float] = {}
        for name, pids in self.roots.items():
            seen, todo = set(), list(pids)
            while todo:
                pid = todo.pop()
                if pid in seen or pid not in table:
                    continue
                seen.add(pid)
                todo.extend(children.get(pid, ()))
            used[name] = sum(table[pid][1] for pid in seen)
        for name, pids in self.alone.items():
            used[name] = sum(table[pid][1] for pid in pids if pid in table)
        return used

    def start(self) -> None:
        self._before, self._machine = self._by_part(), _machine_busy()
        self._started = os.times().elapsed

    def stop(self) -> CpuShares:
        """What each part used since `start()`; a process that exited meanwhile is left out."""
        seconds = max(1e-9, os.times().elapsed - self._started)
        after = self._by_part()
        parts = {
            name: max(0.0, after[name] - self._before.get(name, 0.0)) / seconds for name in after
        }
        return CpuShares(parts, (_machine_busy() - self._machine) / seconds, seconds)
