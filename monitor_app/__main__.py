"""`python -m monitor_app users …` / `tokens …`: the monitor's command line (Flask's CLI)."""

import os

from flask.cli import FlaskGroup

from monitor_app import create_app

# The commands print what they did; the app's INFO logs (migrations...) would drown it.
os.environ.setdefault("LOG_LEVEL", "WARNING")

cli = FlaskGroup(create_app=create_app, add_default_commands=False, load_dotenv=False)

if __name__ == "__main__":
    cli(prog_name="python -m monitor_app")
