"""`python -m bench [NAME …]`: run the benchmarks (all of BENCHMARKS), then write the summary.

The summary (var/bench/summary.md) is the Markdown that README.md's benchmark section shows;
`--readme` (as `make bench` runs it) puts it there.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time

from bench.report import OUTPUT_DIR, ROOT, Report, machine

README_START, README_END = "<!-- bench:start -->", "<!-- bench:end -->"
BENCHMARKS = (
    "ingest",
    "query",
    "query_postgres",
    "e2e",
    "alerts",
    "alarms",
    "live",
    "storage",
    "simulator",
)


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
    parser.add_argument(
        "--readme",
        action="store_true",
        help="also put the summary into README.md, between its bench:start and bench:end marks",
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
    summary = write_summary(reports, time.monotonic() - started)
    if args.readme:
        into_readme(summary)
    return 0


def write_summary(reports: list[Report], seconds: float) -> str:
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
    return "\n".join(lines)


def into_readme(summary: str) -> None:
    """Replace what README.md shows between its marks with `summary`."""
    readme = ROOT / "README.md"
    text = readme.read_text()
    before, start, rest = text.partition(README_START)
    _, end, after = rest.partition(README_END)
    if not (start and end):
        raise SystemExit(f"README.md has no {README_START} … {README_END} block")
    readme.write_text(f"{before}{start}\n{summary.rstrip()}\n{end}{after}")
    print("README.md: benchmark block replaced")


if __name__ == "__main__":
    sys.exit(main())
