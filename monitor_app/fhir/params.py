"""The search parameters the FHIR API takes, read into typed searches or refused.

Unknown parameters are refused (400) unless the client sends `Prefer: handling=lenient`, in
which case they are ignored, as FHIR allows (http://hl7.org/fhir/R4/search.html#errors): a
misspelt filter must not silently widen a search over patient data.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from werkzeug.datastructures import Headers, MultiDict

from monitor_app.fhir.cursor import Cursor, read_cursor, read_patients_cursor
from monitor_app.fhir.dates import Bound, DateError, parse_date
from monitor_app.fhir.outcomes import Refused
from monitor_app.fhir.vitals import KINDS_BY_CODE, Kind

DEFAULT_COUNT = 50
MAX_COUNT = 500
# Bounded inputs: more would only cost the server and mean nothing more.
MAX_CODES = 20
MAX_DATES = 4
MAX_IDS = 20
MAX_VALUE_LENGTH = 256
# Taken by every interaction: the format is checked for every /fhir request.
GENERAL = frozenset({"_format", "_pretty"})
OBSERVATION_PARAMS = frozenset({"patient", "subject", "code", "date", "_count", "_sort", "_cursor"})
PATIENT_PARAMS = frozenset({"_id", "identifier", "_count", "_cursor"})
# Where a Patient search's pages can start: far beyond the patients one MRN can match.
MAX_PATIENT_OFFSET = 100_000


@dataclass(frozen=True, slots=True)
class ObservationSearch:
    """Which Observations of one patient, in what order, from where, how many."""

    patient: uuid.UUID
    kinds: frozenset[Kind]
    bounds: tuple[Bound, ...]
    count: int
    newest_first: bool
    cursor: Cursor | None


@dataclass(frozen=True, slots=True)
class PatientSearch:
    uuids: tuple[uuid.UUID, ...] | None
    identifier: tuple[str | None, str] | None
    count: int
    offset: int = 0  # how many the pages before served


def lenient(headers: Headers) -> bool:
    """Whether the client asked for unknown parameters to be ignored."""
    preferences = ",".join(headers.getlist("Prefer")).replace(";", ",").split(",")
    return any(part.strip().lower() == "handling=lenient" for part in preferences)


def check_known(args: MultiDict[str, str], known: Collection[str], headers: Headers) -> None:
    unknown = sorted(set(args) - set(known) - GENERAL)
    if unknown and not lenient(headers):
        names = ", ".join(repr(name[:40]) for name in unknown[:5])
        raise Refused(
            f"Unknown search parameter(s) {names}; this server supports {sorted(known)}. "
            "Send 'Prefer: handling=lenient' to have unknown parameters ignored.",
            "not-supported",
        )


def _one(args: MultiDict[str, str], name: str, max_length: int = MAX_VALUE_LENGTH) -> str | None:
    values = args.getlist(name)
    if len(values) > 1:
        raise Refused(f"Give {name!r} at most once.")
    if values and len(values[0]) > max_length:
        raise Refused(f"{name!r} is longer than {max_length} characters.", "too-long")
    return values[0] if values else None


def read_count(args: MultiDict[str, str]) -> int:
    text = _one(args, "_count")
    if text is None:
        return DEFAULT_COUNT
    if not text.isascii() or not text.isdigit() or int(text) > MAX_COUNT:
        raise Refused(f"_count must be a whole number from 0 to {MAX_COUNT}, not {text[:20]!r}.")
    return int(text)


def read_patient_reference(text: str) -> uuid.UUID:
    """`Patient/<uuid>` or `<uuid>`."""
    reference = text.removeprefix("Patient/")
    try:
        if len(reference) != 36:
            raise ValueError
        return uuid.UUID(reference)
    except ValueError:
        raise Refused(
            f"patient must be Patient/<uuid> or <uuid>, not {text[:60]!r}; one patient per search."
        ) from None


def read_token(text: str) -> tuple[str | None, str]:
    """`system|code`, `|code` (no system) or `code` (any system): (system, code); the system is
    None for any, '' for none."""
    system, bar, code = text.rpartition("|")
    if not code:
        raise Refused(f"Not a token: {text[:60]!r}; write system|code or code.")
    return (system if bar else None), code


def read_kinds(args: MultiDict[str, str]) -> frozenset[Kind]:
    """The Observations `code` asks for (comma: any of them); every kind without it."""
    # A list: its length is bounded by how many codes it holds (then each code's).
    text = _one(args, "code", max_length=MAX_CODES * MAX_VALUE_LENGTH)
    if text is None:
        return frozenset(Kind)
    values = text.split(",")
    if len(values) > MAX_CODES:
        raise Refused(f"code takes at most {MAX_CODES} comma-separated codes.", "too-costly")
    kinds = set()
    for value in values:
        if len(value) > MAX_VALUE_LENGTH:
            raise Refused(f"A code is at most {MAX_VALUE_LENGTH} characters.", "too-long")
        system, code = read_token(value)
        kinds.update(
            kind
            for (known_system, known_code), kind in KINDS_BY_CODE.items()
            if known_code == code and system in (None, known_system)
        )
    return frozenset(kinds)


def read_bounds(args: MultiDict[str, str]) -> tuple[Bound, ...]:
    values = args.getlist("date")
    if len(values) > MAX_DATES:
        raise Refused(f"Give date at most {MAX_DATES} times.")
    bounds: list[Bound] = []
    for value in values:
        if len(value) > MAX_VALUE_LENGTH:
            raise Refused("A date is not that long.", "too-long")
        try:
            bounds.extend(parse_date(value))
        except DateError as error:
            raise Refused(str(error)) from None
    return tuple(bounds)


def observation_search(args: MultiDict[str, str], headers: Headers) -> ObservationSearch:
    """The Observation search `args` ask for; 400 if they do not make one."""
    check_known(args, OBSERVATION_PARAMS, headers)
    patients = args.getlist("patient") + args.getlist("subject")
    if not patients:
        # Every patient's history at once is more than a page can honestly stream.
        raise Refused(
            "An Observation search needs patient=Patient/<uuid>: searching every patient's "
            "samples at once is not supported.",
            "too-costly",
        )
    if len(patients) > 1 or len(patients[0]) > MAX_VALUE_LENGTH:
        raise Refused("Search one patient at a time: give patient (or subject) once.")
    patient = read_patient_reference(patients[0])
    sort = _one(args, "_sort") or "-date"
    if sort not in ("date", "-date"):
        raise Refused(f"_sort must be date or -date, not {sort[:40]!r}.", "not-supported")
    newest_first = sort == "-date"
    cursor_text = _one(args, "_cursor")
    cursor = None
    if cursor_text is not None:
        cursor = read_cursor(cursor_text)
        # A cursor only says where to go on within this search: never another patient's.
        if cursor.patient != patient or cursor.newest_first != newest_first:
            raise Refused("This _cursor belongs to another search.")
    return ObservationSearch(
        patient=patient,
        kinds=read_kinds(args),
        bounds=read_bounds(args),
        count=read_count(args),
        newest_first=newest_first,
        cursor=cursor,
    )


def patient_search(args: MultiDict[str, str], headers: Headers) -> PatientSearch:
    """The Patient search `args` ask for: by _id, identifier or both."""
    check_known(args, PATIENT_PARAMS, headers)
    ids = _one(args, "_id", max_length=MAX_IDS * MAX_VALUE_LENGTH)
    identifier = _one(args, "identifier")
    if ids is None and identifier is None:
        raise Refused(
            "Search patients by identifier (system|value or value) or _id; the list of every "
            "patient is the JSON API's (GET /api/v1/patients).",
            "too-costly",
        )
    uuids = None
    if ids is not None:
        values = ids.split(",")
        if len(values) > MAX_IDS:
            raise Refused(f"_id takes at most {MAX_IDS} ids.", "too-costly")
        # An id that is no uuid is no patient's: it matches nothing.
        uuids = tuple(u for u in map(uuid_or_none, values) if u is not None)
    token = None if identifier is None else read_token(identifier)
    if token is not None and "," in token[1]:
        raise Refused("identifier takes one system|value.", "not-supported")
    cursor = _one(args, "_cursor")
    offset = 0 if cursor is None else read_patients_cursor(cursor, MAX_PATIENT_OFFSET)
    return PatientSearch(uuids=uuids, identifier=token, count=read_count(args), offset=offset)


def uuid_or_none(text: str) -> uuid.UUID | None:
    """The uuid `text` spells in full, or None."""
    try:
        return uuid.UUID(text) if len(text) == 36 else None
    except ValueError:
        return None
