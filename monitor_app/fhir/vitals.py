"""What each stored sample is in FHIR: one Observation per vital sign, and one for NEWS2.

The codes and profiles are those of the R4 vital-signs profiles
(http://hl7.org/fhir/R4/observation-vitalsigns.html); units are UCUM.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
CATEGORY_SYSTEM = "http://terminology.hl7.org/CodeSystem/observation-category"
PROFILE_BASE = "http://hl7.org/fhir/StructureDefinition/"
# NEWS2 has no LOINC code we could confirm (the UK's NEWS2 guidance codes its total score in
# SNOMED CT's UK edition, not LOINC), so it is coded in a system of Vigil's own.
VIGIL_CODES = "https://vigil.example/fhir/CodeSystem/vigil"


class Kind(StrEnum):
    """Which Observation of a sample: the suffix of its id, `<sample id>-<kind>`."""

    HEART_RATE = "hr"
    RESP_RATE = "rr"
    SPO2 = "spo2"
    TEMPERATURE = "temp"
    BLOOD_PRESSURE = "bp"
    NEWS2 = "news2"


# The order a sample's Observations are listed in; a page cursor names a position in it.
KIND_ORDER: tuple[Kind, ...] = tuple(Kind)


@dataclass(frozen=True, slots=True)
class Code:
    system: str
    code: str
    display: str


@dataclass(frozen=True, slots=True)
class Unit:
    """A UCUM unit: its code, and how it is shown."""

    code: str
    text: str


@dataclass(frozen=True, slots=True)
class Definition:
    """How one kind of Observation is coded."""

    kind: Kind
    codes: tuple[Code, ...]  # the first is the one the profile requires
    text: str
    category: str  # vital-signs, or survey for a score
    profile: str | None
    unit: Unit


PER_MINUTE = Unit("/min", "beats/minute")
MM_HG = Unit("mm[Hg]", "mmHg")

DEFINITIONS: dict[Kind, Definition] = {
    d.kind: d
    for d in (
        Definition(
            Kind.HEART_RATE,
            (Code(LOINC, "8867-4", "Heart rate"),),
            "Heart rate",
            "vital-signs",
            "heartrate",
            PER_MINUTE,
        ),
        Definition(
            Kind.RESP_RATE,
            (Code(LOINC, "9279-1", "Respiratory rate"),),
            "Respiratory rate",
            "vital-signs",
            "resprate",
            Unit("/min", "breaths/minute"),
        ),
        Definition(
            Kind.SPO2,
            # The profile's code, and the pulse oximetry one a monitor's reading also is.
            (
                Code(LOINC, "2708-6", "Oxygen saturation in Arterial blood"),
                Code(LOINC, "59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry"),
            ),
            "Oxygen saturation",
            "vital-signs",
            "oxygensat",
            Unit("%", "%"),
        ),
        Definition(
            Kind.TEMPERATURE,
            (Code(LOINC, "8310-5", "Body temperature"),),
            "Body temperature",
            "vital-signs",
            "bodytemp",
            Unit("Cel", "C"),
        ),
        Definition(
            Kind.BLOOD_PRESSURE,
            (Code(LOINC, "85354-9", "Blood pressure panel with all children optional"),),
            "Blood pressure",
            "vital-signs",
            "bp",
            MM_HG,
        ),
        Definition(
            Kind.NEWS2,
            (Code(VIGIL_CODES, "news2", "National Early Warning Score 2 (NEWS2)"),),
            "NEWS2",
            "survey",
            None,
            Unit("{score}", "score"),
        ),
    )
}

SYSTOLIC = Code(LOINC, "8480-6", "Systolic blood pressure")
DIASTOLIC = Code(LOINC, "8462-4", "Diastolic blood pressure")

# What a `code` search matches: (system, code) of each Observation's codes.
KINDS_BY_CODE: dict[tuple[str, str], Kind] = {
    (code.system, code.code): d.kind for d in DEFINITIONS.values() for code in d.codes
}
