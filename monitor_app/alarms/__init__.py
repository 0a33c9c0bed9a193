"""Per-patient alarm limits; the alarms themselves come with the alarm engine."""
