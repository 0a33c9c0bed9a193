"""The shared error body reads the same on every supported Python."""

from __future__ import annotations

import pytest

from shared.errors import error_body


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (413, "Request Entity Too Large"),
        (414, "Request-URI Too Long"),
        (416, "Requested Range Not Satisfiable"),
        (422, "Unprocessable Entity"),
        (404, "Not Found"),
    ],
)
def test_status_names_do_not_depend_on_the_python(code: int, status: str) -> None:
    body = error_body(code)
    assert (body["code"], body["status"]) == (code, status)
    assert body["message"]


def test_a_given_message_is_kept() -> None:
    assert error_body(422, "bad limit", {"limit": ["too big"]}) == {
        "code": 422,
        "status": "Unprocessable Entity",
        "message": "bad limit",
        "errors": {"limit": ["too big"]},
    }
