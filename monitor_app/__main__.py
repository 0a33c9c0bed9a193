"""`python -m monitor_app --port 8000`: serve the clinicians' API under gunicorn;
`python -m monitor_app users …` / `tokens …`: accounts and API tokens (Flask's CLI)."""

import argparse
import os
import sys

import click

from monitor_app import create_app
from shared.config import ConfigError
from shared.serve import run_cli

COMMANDS = ("users", "tokens")


def manage(argv: list[str]) -> None:
    from flask.cli import FlaskGroup

    # The commands print what they did; the app's INFO logs (migrations...) would drown it.
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    cli = FlaskGroup(create_app=create_app, add_default_commands=False, load_dotenv=False)
    try:
        cli(argv, prog_name="python -m monitor_app", standalone_mode=False)
    except ConfigError as exc:
        sys.exit(f"configuration error: {exc}")
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        sys.exit(1)


def serve(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m monitor_app",
        description="Vigil monitor_app: the clinicians' API",
        epilog="Accounts and API tokens: python -m monitor_app users --help, tokens --help.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, help="default: $PORT, else 8000")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args(argv)
    run_cli(
        create_app,
        args.host,
        args.port,
        default_port=8000,
        workers=args.workers,
        threads=args.threads,
    )


def main(argv: list[str]) -> None:
    if argv and argv[0] in COMMANDS:
        manage(argv)
    else:
        serve(argv)


if __name__ == "__main__":
    main(sys.argv[1:])
