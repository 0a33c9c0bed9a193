"""gateway_app: bedside monitors' HL7 v2 (IHE PCD-01 ORU^R01) as Vigil's vitals samples."""
