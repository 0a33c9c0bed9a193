"""`python -m analyser_app --port 8090`: serve the reference text analyser."""

import argparse

from analyser_app import create_app
from shared.serve import run_cli


def main() -> None:
    parser = argparse.ArgumentParser(description="Vigil reference text analyser")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: $PORT, else 8090")
    args = parser.parse_args()
    # Each request sleeps for its latency: threads, not processes, keep them from queueing.
    run_cli(create_app, args.host, args.port, default_port=8090, workers=1, threads=16)


if __name__ == "__main__":
    main()
