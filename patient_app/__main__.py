"""`python -m patient_app --name "Ivan Petrov" --port 8081`: one named patient on its own port.

`--patients N` simulates N patients in one process, for load; `--protocol hl7` sends their
samples to gateway_app as HL7 instead of to Kafka.
"""

import argparse
import os

from shared.serve import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description="Vigil patient simulator")
    parser.add_argument("--name", help="patient name (PATIENT_NAME)")
    parser.add_argument("--patient-id", help="the patient's uuid, e.g. a random one (PATIENT_UUID)")
    parser.add_argument("--patients", type=int, help="simulate N patients (PATIENT_COUNT)")
    parser.add_argument("--scenario", help="initial scenario (PATIENT_SCENARIO)")
    parser.add_argument("--seed", help="random seed for a reproducible run (PATIENT_SEED)")
    parser.add_argument("--interval", help="seconds between samples (METRICS_INTERVAL)")
    parser.add_argument(
        "--protocol", help="kafka, or hl7 to send through gateway_app (PATIENT_PROTOCOL)"
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: $PORT, else 8081")
    args = parser.parse_args()
    # Command-line flags become the environment the app's settings are read from.
    for flag, variable in (
        ("name", "PATIENT_NAME"),
        ("patient_id", "PATIENT_UUID"),
        ("patients", "PATIENT_COUNT"),
        ("scenario", "PATIENT_SCENARIO"),
        ("seed", "PATIENT_SEED"),
        ("interval", "METRICS_INTERVAL"),
        ("protocol", "PATIENT_PROTOCOL"),
    ):
        value = getattr(args, flag)
        if value is not None:
            os.environ[variable] = str(value)

    from patient_app import create_app

    # One worker: a second would simulate the same patients twice.
    run_cli(create_app, args.host, args.port, default_port=8081, workers=1)


if __name__ == "__main__":
    main()
