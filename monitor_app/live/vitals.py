"""`vitals` events on their way to the streams: gathered over a short window into one, then
cut down for each set of patients the streams show.

A consumer publishes one event per batch it stores; at a thousand dashboards that was one
WebSocket message per batch per stream. Gathered for WS_VITALS_COALESCE_SECONDS, a stream is
sent a few messages a second whatever the batches, and each gathered event is cut once per
set of patients, not once per batch.
"""

from __future__ import annotations

import json
from typing import Any

VITALS = "vitals"
# Samples gathered into one event at most: the message each stream is sent stays bounded
# whatever a burst of batches holds.
MAX_GATHERED_SAMPLES = 5000


class VitalsGatherer:
    """The `vitals` events received since the first of them, until they are due."""

    def __init__(self, window: float) -> None:
        self.window = window
        self._events: list[tuple[dict[str, Any], str]] = []
        self._samples = 0
        self._due = 0.0

    def takes(self, event_type: str, event: dict[str, Any]) -> bool:
        """Whether `event` may be gathered: a `vitals` event as consumers publish them, a
        list of samples and nothing else. Any other is passed on as published."""
        return (
            self.window > 0
            and event_type == VITALS
            and event.keys() == {"type", "samples"}
            and isinstance(event["samples"], list)
        )

    def add(self, event: dict[str, Any], text: str, now: float) -> None:
        if not self._events:
            self._due = now + self.window
        self._events.append((event, text))
        self._samples += len(event["samples"])

    def wait(self, longest: float, now: float) -> float:
        """How long the hub may wait for the next event before these are due."""
        return longest if not self._events else max(0.0, min(longest, self._due - now))

    def due(self, now: float) -> bool:
        return bool(self._events) and (now >= self._due or self._samples >= MAX_GATHERED_SAMPLES)

    def take(self) -> VitalsCutter | None:
        """The gathered events as one, in the order they came (None: there are none)."""
        events, self._events, self._samples = self._events, [], 0
        if not events:
            return None
        if len(events) == 1:
            return VitalsCutter(*events[0])
        samples = [sample for event, _ in events for sample in event["samples"]]
        return VitalsCutter({"type": VITALS, "samples": samples})


class VitalsCutter:
    """One `vitals` event, as each set of patients is to receive it."""

    def __init__(self, event: dict[str, Any], text: str | None = None) -> None:
        self.event = event
        # Serialised when a stream of the whole ward first needs it.
        self._text = text
        samples = event.get("samples")
        self.samples = samples if isinstance(samples, list) else []
        self._texts: dict[frozenset[str], str | None] = {}
        # Each patient's samples with their places in the event: a subscription's are found
        # through its patients, not by reading every sample again for every subscription
        # (a thousand dashboards of ten beds each, on a ward of thousands).
        self._by_patient: dict[str, list[tuple[int, dict[str, Any]]]] = {}
        for place, sample in enumerate(self.samples):
            patient = _patient_of(sample) if isinstance(sample, dict) else None
            if patient is not None:
                self._by_patient.setdefault(patient, []).append((place, sample))

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = json.dumps(self.event)
        return self._text

    def for_patients(self, patients: frozenset[str] | None) -> str | None:
        """The event's text with only `patients`' samples (all: the whole event); None when
        it has none of theirs."""
        if patients is None:
            return self.text
        if patients not in self._texts:
            shown = (
                patients & self._by_patient.keys()
                if len(patients) > len(self._by_patient)
                else (patient for patient in patients if patient in self._by_patient)
            )
            wanted = sorted(entry for patient in shown for entry in self._by_patient[patient])
            if not wanted:
                text = None
            elif len(wanted) == len(self.samples):
                text = self.text
            else:
                text = json.dumps({**self.event, "samples": [sample for _, sample in wanted]})
            self._texts[patients] = text
        return self._texts[patients]


def _patient_of(sample: dict[str, Any]) -> str | None:
    patient = sample.get("patient_uuid")
    return patient if isinstance(patient, str) else None
