"""Patients' uuids, derived under the site's id secret (PATIENT_ID_SECRET).

One derivation for every way a patient reaches Vigil: the simulator derives a uuid from a
patient's name, the HL7 gateway from their hospital identifier, and a simulated patient sent
over HL7 has the uuid the gateway will give it. An HMAC, not a uuid5: a uuid5's namespace is
in the source, so whoever knew a patient's name or MRN would know their id.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid


def derived_uuid(secret: str, text: str) -> uuid.UUID:
    """The same uuid for `text` on every restart under one secret; shaped as a version 4
    uuid (RFC 9562), which to anyone without the secret it is."""
    digest = hmac.new(secret.encode(), text.encode(), hashlib.sha256).digest()
    return uuid.UUID(bytes=digest[:16], version=4)


def identifier_uuid(system: str, value: str, secret: str) -> uuid.UUID:
    """The uuid of the patient a hospital identifies as `value` in `system` (FHIR's
    Identifier.system, the URI of who assigned it)."""
    return derived_uuid(secret, f"{system}|{value}")


def authority_system(authority: str) -> str:
    """The identifier system for an assigning authority (PID-3's CX.4) no URI is known for: its
    name under Vigil's own namespace. The gateway names MRNs so, and the simulator, sending
    over HL7, knows its patients' systems by it."""
    return f"urn:vigil:assigning-authority:{authority}"
