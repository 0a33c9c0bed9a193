"""The client of the AI API: one POST with the text and the worker's bearer token, timeouts,
and errors sorted by whether a retry can help."""

from __future__ import annotations

from dataclasses import dataclass

import httpx
from marshmallow import EXCLUDE, Schema, ValidationError, fields, validate

from shared.models import CATEGORIES

# Connecting is quick or not at all; the analysis itself may take the whole timeout.
CONNECT_TIMEOUT_SECONDS = 3.0


class AIError(Exception):
    """The AI API refused the text or answered nonsense: retrying will not help."""


class TransientAIError(AIError):
    """Timeout, connection failure, 5xx or 429: worth retrying later."""


@dataclass(frozen=True)
class AnalysisResult:
    category: str
    confidence: float
    keywords: list[str]


class _ResultSchema(Schema):
    class Meta:
        unknown = EXCLUDE  # a provider may add fields; those we need are checked

    category = fields.String(required=True, validate=validate.OneOf(CATEGORIES))
    confidence = fields.Float(required=True, validate=validate.Range(0, 1))
    keywords = fields.List(
        fields.String(validate=validate.Length(max=100)),
        required=True,
        validate=validate.Length(max=20),
    )


class AIClient:
    """Thread-safe; one per worker process. The token is sent with every request and kept in
    the HTTP client alone: no attribute, message or log line shows it."""

    def __init__(self, url: str, timeout: float, token: str) -> None:
        self.url = url
        self.timeout = timeout
        self._http = httpx.Client(
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT_SECONDS)),
            headers={"Authorization": f"Bearer {token}"},
        )

    def analyse(self, text: str) -> AnalysisResult:
        try:
            response = self._http.post(self.url, json={"text": text})
        except httpx.TimeoutException:
            raise TransientAIError(f"AI API timed out after {self.timeout:g} s") from None
        except httpx.TransportError as exc:
            raise TransientAIError(f"AI API unreachable: {exc}") from None
        if response.status_code >= 500 or response.status_code == 429:
            raise TransientAIError(f"AI API answered {response.status_code}")
        if response.status_code in (401, 403):
            # Not the text's fault: the operator must replace the token (or grant its scope).
            raise AIError(
                f"AI API refused the worker's token ({response.status_code}): "
                "check AI_API_TOKEN_FILE or AI_API_TOKEN"
            )
        if response.status_code != 200:
            raise AIError(f"AI API refused the text: {response.status_code} {response.text[:200]}")
        try:
            data = _ResultSchema().load(response.json())
        except (ValueError, ValidationError) as exc:
            raise AIError(f"AI API answered an unexpected body: {exc}") from None
        return AnalysisResult(
            data["category"],
            round(data["confidence"], 4),
            [keyword.lower() for keyword in data["keywords"]],
        )

    def close(self) -> None:
        self._http.close()
