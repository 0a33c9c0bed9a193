"""`python -m bench [NAME …]`: run the benchmarks (all of BENCHMARKS), then write the summary.

The summary (var/bench/summary.md) is the Markdown that README.md's benchmark section shows.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from bench.report import OUTPUT_DIR, Report, machine

BENCHMARKS = ("ingest", "query", "e2e", "alerts", "alarms", "storage", "simulator")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names",
        nargs="*",
        metavar="NAME",
        help=f"benchmarks to run (default: all of {', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small sizes and short runs: checks the benchmarks work, figures not comparable",
    )
    args = parser.parse_args(argv)
    unknown = set(args.names) - set(BENCHMARKS)
    if unknown:
        parser.error(f"no benchmark named {', '.join(sorted(unknown))}")
    reports: list[Report] = []
    started = time.monotonic()
    for name in args.names or BENCHMARKS:
        module = importlib.import_module(f"bench.{name}")
        print(f"== {name} ==", flush=True)
        report = module.run(quick=args.quick)
        report.show()
        reports.append(report)
    write_summary(reports, time.monotonic() - started)
    return 0


def write_summary(reports: list[Report], seconds: float) -> None:
    facts = machine()
    lines = [
        f"Measured on {facts['cpu']}, {facts['cores']} cores, {facts['memory_gib']} GiB; "
        f"Python {facts['python']}, SQLite {facts['sqlite']}; commit {facts['commit']}, "
        f"{facts['when']} ({seconds / 60:.1f} min in all).",
        "",
    ]
    lines += [report.markdown() for report in reports]
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    (OUTPUT_DIR / "summary.md").write_text("\n".join(lines))
    print(f"\nSummary: {(OUTPUT_DIR / 'summary.md')}")


if __name__ == "__main__":
    sys.exit(main())
