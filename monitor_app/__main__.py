"""`python -m monitor_app --port 8000`: serve the clinicians' API under gunicorn."""

import argparse

from monitor_app import create_app
from shared.serve import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description="Vigil monitor_app: the clinicians' API")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: $PORT, else 8000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    run_cli(
        create_app,
        args.host,
        args.port,
        default_port=8000,
        workers=args.workers,
        threads=args.threads,
    )


if __name__ == "__main__":
    main()
