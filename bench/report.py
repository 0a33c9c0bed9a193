"""One benchmark's figures: printed as a table, written as JSON under var/bench/."""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import statistics
import subprocess
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_DIR = ROOT / "var" / "bench"


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        memory_kb = int(Path("/proc/meminfo").read_text().split()[1])
    except (OSError, ValueError, IndexError):
        memory_kb = 0
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],  # noqa: S607
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(memory_kb / 2**20, 1),
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "commit": commit,
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def percentile(values: list[float], fraction: float) -> float:
    """The `fraction` quantile (0.5, 0.99) by linear interpolation; nan for no values."""
    if not values:
        return float("nan")
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=1000, method="inclusive")[round(fraction * 1000) - 1]


def write_json(path: Path, value: Any) -> Path:
    """`value` as indented JSON at `path`, its folder made first (a fresh clone has no var/)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, default=str) + "\n")
    return path


@dataclass
class Target:
    """A goal the issue sets, e.g. "Vigil ÷ straightforward ≥ 20"."""

    description: str
    figure: float
    goal: float
    higher_is_better: bool = True

    @property
    def met(self) -> bool:
        return self.figure >= self.goal if self.higher_is_better else self.figure <= self.goal


@dataclass
class Report:
    name: str
    title: str
    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    parameters: dict[str, Any] = field(default_factory=dict)

    def add(self, **row: Any) -> None:
        self.rows.append(row)

    def target(
        self, description: str, figure: float, goal: float, higher_is_better: bool = True
    ) -> None:
        self.targets.append(Target(description, figure, goal, higher_is_better))

    def table(self) -> str:
        """The rows as a Markdown table (also readable in a terminal)."""
        cells = [[_format(row.get(column)) for column in self.columns] for row in self.rows]
        widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(self.columns)]
        lines = [_row(self.columns, widths), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += [_row(r, widths) for r in cells]
        return "\n".join(lines)

    def markdown(self) -> str:
        parts = [f"### {self.title}", ""]
        if self.parameters:
            parts += [", ".join(f"{k} {_format(v)}" for k, v in self.parameters.items()), ""]
        parts += [self.table(), ""]
        for target in self.targets:
            mark = "met" if target.met else "NOT met"
            sign = "≥" if target.higher_is_better else "≤"
            parts.append(
                f"- {target.description}: {_format(target.figure)} "
                f"(target {sign} {_format(target.goal)}) — **{mark}**"
            )
        parts += [f"- {note}" for note in self.notes]
        return "\n".join(parts).rstrip() + "\n"

    def save(self) -> Path:
        document = {
            "name": self.name,
            "title": self.title,
            "machine": machine(),
            "parameters": self.parameters,
            "columns": self.columns,
            "rows": self.rows,
            "targets": [
                {
                    "description": t.description,
                    "figure": t.figure,
                    "goal": t.goal,
                    "higher_is_better": t.higher_is_better,
                    "met": t.met,
                }
                for t in self.targets
            ],
            "notes": self.notes,
        }
        return write_json(OUTPUT_DIR / f"{self.name}.json", document)

    def show(self) -> None:
        print()
        print(self.markdown())
        print(f"(written to {self.save().relative_to(ROOT)})", flush=True)


def _row(cells: list[str], widths: list[int]) -> str:
    return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"


def _format(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        if value != value:  # nan
            return "–"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)
