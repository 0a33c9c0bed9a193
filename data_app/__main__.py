"""`python -m data_app --port 8001`: serve data_app under gunicorn."""

import argparse

from data_app import create_app
from shared.serve import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description="Vigil data_app: Kafka consumer and storage")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: $PORT, else 8001")
    args = parser.parse_args()
    run_cli(create_app, args.host, args.port, default_port=8001)


if __name__ == "__main__":
    main()
