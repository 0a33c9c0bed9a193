"""The worker's bearer token for the AI API: from AI_API_TOKEN_FILE (where `make run` writes
it), or AI_API_TOKEN; without one the worker does not start, and no message shows a token."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from shared.config import VAR_DIR, ConfigError, load_settings
from worker_app.config import DEFAULT_AI_API_TOKEN_FILE, WORKER_SETTINGS, ai_api_token

ROOT = Path(__file__).resolve().parent.parent


def token_of(**environ: str) -> str:
    return ai_api_token(load_settings(WORKER_SETTINGS, environ, dotenv=False))


def test_the_token_is_the_files_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ai-api-token"
    path.write_text("abc.def.ghi\n")
    assert token_of(AI_API_TOKEN_FILE=str(path)) == "abc.def.ghi"


def test_ai_api_token_wins_over_the_file(tmp_path: Path) -> None:
    path = tmp_path / "ai-api-token"
    path.write_text("from-the-file\n")
    assert token_of(AI_API_TOKEN_FILE=str(path), AI_API_TOKEN=" provider-key ") == "provider-key"


def test_no_token_stops_the_worker_saying_how_to_make_one(tmp_path: Path) -> None:
    path = tmp_path / "absent"
    with pytest.raises(ConfigError, match=r"^AI_API_TOKEN_FILE: no token at ") as refused:
        token_of(AI_API_TOKEN_FILE=str(path))
    assert f"tokens worker {path}" in str(refused.value)


@pytest.mark.parametrize("content", ["", "\n", "one.secret.token\nsecond.secret.line\n"])
def test_a_file_without_one_token_is_refused_without_showing_it(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "ai-api-token"
    path.write_text(content)
    with pytest.raises(ConfigError, match=r"^AI_API_TOKEN_FILE: ") as refused:
        token_of(AI_API_TOKEN_FILE=str(path))
    assert "secret" not in str(refused.value)


def test_make_run_writes_the_token_where_the_worker_reads_it_by_default() -> None:
    assert DEFAULT_AI_API_TOKEN_FILE.is_relative_to(VAR_DIR)
    makefile = (ROOT / "Makefile").read_text()
    [written] = re.findall(r"-m monitor_app tokens worker (\S+)", makefile)
    assert ROOT / written == DEFAULT_AI_API_TOKEN_FILE
