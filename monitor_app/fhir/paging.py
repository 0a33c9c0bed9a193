"""One page of an Observation search, streamed from the database a batch of samples at a
time (keyset on the sample's time, never an OFFSET into the whole history)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from monitor_app.fhir import services
from monitor_app.fhir.cursor import Cursor
from monitor_app.fhir.params import ObservationSearch
from monitor_app.fhir.resources import Resource, kinds_of, observation
from monitor_app.fhir.vitals import KIND_ORDER, Kind

POSITION = {kind: index for index, kind in enumerate(KIND_ORDER)}


@dataclass(frozen=True, slots=True)
class Page:
    resources: list[Resource]
    total: int  # every match of the search, not only this page's
    next_cursor: Cursor | None


def observation_page(session: Session, patient_id: int, search: ObservationSearch) -> Page:
    """The page of the search's Observations its cursor points at (the first without one)."""
    total = _total(session, patient_id, search)
    if not search.kinds or search.count == 0:
        return Page([], total, None)
    wanted = search.count + 1  # one more than the page: is there a next page?
    batch_size = wanted // len(search.kinds) + 2
    cursor = search.cursor
    start, include_start = (cursor.timestamp, True) if cursor else (None, False)
    found: list[tuple[services.StoredSample, Kind]] = []
    while len(found) < wanted:
        batch = services.sample_batch(
            session,
            patient_id,
            search.bounds,
            newest_first=search.newest_first,
            start=start,
            include_start=include_start,
            limit=batch_size,
        )
        for sample in batch:
            for kind in kinds_of(sample, search.kinds):
                # The cursor's own sample: only its Observations the last page did not serve.
                if cursor and sample.timestamp == cursor.timestamp:
                    if POSITION[kind] <= cursor.position:
                        continue
                found.append((sample, kind))
        if len(batch) < batch_size:
            break
        start, include_start = batch[-1].timestamp, False
    page = found[: search.count]
    next_cursor = None
    if len(found) > search.count:
        last, kind = page[-1]
        next_cursor = Cursor(search.patient, search.newest_first, last.timestamp, POSITION[kind])
    return Page([observation(sample, kind) for sample, kind in page], total, next_cursor)


def _total(session: Session, patient_id: int, search: ObservationSearch) -> int:
    """How many Observations match: a count of samples, never a read of them."""
    if not search.kinds:
        return 0
    every, scored = services.count_samples(session, patient_id, search.bounds)
    return every * len(search.kinds - {Kind.NEWS2}) + (scored if Kind.NEWS2 in search.kinds else 0)
