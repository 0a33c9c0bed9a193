"""Vigil's benchmarks: `make bench` (or `python -m bench [name ...]`).

Every figure is reported beside a baseline measured in the same run, on the same machine,
because absolute times on a shared machine vary from run to run.
"""

# The benchmarks' patients get the same uuids in every run (patient_app.patients).
BENCH_ID_SECRET = "vigil-benchmark-patients"  # noqa: S105  (no secret: made-up patients)
