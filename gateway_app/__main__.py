"""`python -m gateway_app --port 8084`: serve gateway_app (HTTP health; MLLP on HL7_PORT)."""

import argparse

from gateway_app import create_app
from shared.serve import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description="Vigil gateway_app: HL7 v2 over MLLP in")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="HTTP port; default: $PORT, else 8084")
    args = parser.parse_args()
    run_cli(create_app, args.host, args.port, default_port=8084)


if __name__ == "__main__":
    main()
