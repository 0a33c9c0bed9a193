"""FHIR `date` search values (`ge2025-01-31`, `lt2025-01-31T08:00:00Z`) as time bounds.

A value stands for the range its precision gives it: `2025-01` is all of January, an instant
to the second is that second. A sample matches `eq` when its time is in the range, `lt`
before it, `gt` after it, `le` before its end and `ge` from its start
(http://hl7.org/fhir/R4/search.html#prefix). A value without a time is a UTC date: Vigil
serves one hospital, but its clients' clocks may be anywhere.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from sqlalchemy import ColumnElement


class DateError(ValueError):
    """A date search value this server cannot read."""


class Op(StrEnum):
    GE = ">="
    GT = ">"
    LE = "<="
    LT = "<"


@dataclass(frozen=True, slots=True)
class Bound:
    """`timestamp <op> instant`; every bound of a search must hold."""

    op: Op
    instant: datetime

    def condition(self, column) -> ColumnElement[bool]:
        if self.op is Op.GE:
            return column >= self.instant
        if self.op is Op.GT:
            return column > self.instant
        if self.op is Op.LE:
            return column <= self.instant
        return column < self.instant


_VALUE = re.compile(
    r"(?P<prefix>[a-z]{2})?"
    r"(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2})"
    r"(?:T(?P<hour>\d{2}):(?P<minute>\d{2})(?::(?P<second>\d{2})(?:\.(?P<fraction>\d{1,6}))?)?"
    r"(?P<zone>Z|[+-]\d{2}:\d{2}))?)?)?"
)
PREFIXES = ("eq", "ge", "gt", "le", "lt")


def parse_date(text: str) -> list[Bound]:
    """The bounds a `date` parameter's value puts on a sample's time."""
    match = _VALUE.fullmatch(text)
    if match is None:
        raise DateError(
            f"Not a FHIR date: {text[:40]!r}. Write e.g. ge2025-01-31 or "
            "lt2025-01-31T08:00:00Z (a time needs its UTC offset; write '+' as %2B)."
        )
    prefix = match["prefix"] or "eq"
    if prefix not in PREFIXES:
        raise DateError(f"Date prefix {prefix!r} is not supported; use one of {PREFIXES}.")
    start, end = _range(match)
    if prefix == "eq":
        return [Bound(Op.GE, start), Bound(Op.LT, end)]
    return [
        {
            "ge": Bound(Op.GE, start),
            "gt": Bound(Op.GE, end),
            "le": Bound(Op.LT, end),
            "lt": Bound(Op.LT, start),
        }[prefix]
    ]


def _range(match: re.Match[str]) -> tuple[datetime, datetime]:
    """[start, end) of the value's precision, in UTC."""
    year, month, day = int(match["year"]), match["month"], match["day"]
    try:
        if month is None:
            return _utc(year, 1, 1), _utc(year + 1, 1, 1)
        if day is None:
            start = _utc(year, int(month), 1)
            following = _utc(year + 1, 1, 1) if month == "12" else _utc(year, int(month) + 1, 1)
            return start, following
        if match["hour"] is None:
            start = _utc(year, int(month), int(day))
            return start, start + timedelta(days=1)
        zone = match["zone"]
        fraction = match["fraction"] or ""
        local = datetime.fromisoformat(
            f"{year:04d}-{month}-{day}T{match['hour']}:{match['minute']}:{match['second'] or '00'}"
            f"{'.' + fraction.ljust(6, '0') if fraction else ''}"
            f"{'+00:00' if zone == 'Z' else zone}"
        )
        start = local.astimezone(UTC)
    except (ValueError, OverflowError):
        raise DateError(f"Not a date that exists: {match.group(0)[:40]!r}.") from None
    if match["second"] is None:
        precision = timedelta(minutes=1)
    elif fraction:
        precision = timedelta(microseconds=10 ** (6 - len(fraction)))
    else:
        precision = timedelta(seconds=1)
    try:
        return start, start + precision
    except OverflowError:
        raise DateError(f"Not a date that UTC can express: {match.group(0)[:40]!r}.") from None


def _utc(year: int, month: int, day: int) -> datetime:
    return datetime(year, month, day, tzinfo=UTC)
