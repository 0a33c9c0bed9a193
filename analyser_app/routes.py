"""HTTP: classify a text, after the latency (and failures) of a remote AI API; health."""

from __future__ import annotations

import logging
import random
import time

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from shared.auth.policy import allow, public
from shared.auth.roles import Role, Scope

from .analysis import Analysis, analyse
from .schemas import AnalysisSchema, HealthSchema, TextSchema

log = logging.getLogger(__name__)

blp = Blueprint("analysis", __name__, description="Text analysis")
health_blp = Blueprint("health", __name__, description="Service health")

# Thread-safe, and needs no seed: latency and failures are meant to be unpredictable.
_rng = random.SystemRandom()


@blp.route("/analyse")
class Analyse(MethodView):
    # The texts describe patients: the worker's token (analysis:write) sends them, or an admin.
    @allow(Role.ADMIN, scope=Scope.ANALYSIS_WRITE)
    @blp.arguments(TextSchema)
    @blp.response(200, AnalysisSchema)
    @blp.alt_response(400, response="BAD_REQUEST", description="A body that is not JSON.")
    @blp.alt_response(
        503,
        response="SERVICE_UNAVAILABLE",
        description="A failure injected by ANALYSER_FAILURE_RATE; retry.",
    )
    def post(self, body: dict) -> Analysis:
        """Classify a notification's text as info, warning or critical."""
        config = current_app.config
        # Sleeping holds one of the worker's threads, not the process: others keep answering.
        time.sleep(_rng.uniform(config["ANALYSER_MIN_LATENCY"], config["ANALYSER_MAX_LATENCY"]))
        if _rng.random() < config["ANALYSER_FAILURE_RATE"]:
            log.info("injected analyser failure")
            abort(503, message="The analyser is temporarily unavailable; retry later.")
        return analyse(body["text"])


@health_blp.route("/health")
class Health(MethodView):
    @public
    @health_blp.response(200, HealthSchema)
    def get(self) -> dict[str, str]:
        """The analyser depends on nothing, so serving means healthy."""
        return {"status": "ok"}
