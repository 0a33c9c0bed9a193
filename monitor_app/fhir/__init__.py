"""A FHIR R4 read API over patients and their vital signs, under `/fhir`."""
