"""The OpenAPI document and Swagger UI, which must work without the internet."""

from __future__ import annotations

import re

from flask.testing import FlaskClient


def test_openapi_lists_the_endpoints(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json

    assert spec["openapi"].startswith("3.")
    assert set(spec["paths"]) == {
        "/api/v1/patients",
        "/api/v1/patients/{patient_uuid}",
        "/api/v1/patients/{patient_uuid}/alarm-limits",
        "/api/v1/patients/{patient_uuid}/alarms",
        "/api/v1/alarms",
        "/api/v1/alarms/{alarm_id}/acknowledge",
        "/api/v1/alarms/{alarm_id}/silence",
        "/api/v1/patient/{patient_uuid}/metrics",
        "/api/v1/patient/{patient_uuid}/history",
        "/health",
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}",
        "/api/v1/notifications/{notification_id}/read",
        "/api/v1/notifications/{notification_id}/status",
        "/api/v1/auth/token",
        "/api/v1/auth/me",
        "/api/v1/auth/tokens",
        "/api/v1/auth/tokens/{token_id}",
        "/api/v1/audit",
        "/api/v1/audit/export",
        "/api/v1/patient/{patient_uuid}/metrics.csv",
    }
    listing = spec["paths"]["/api/v1/patients"]["get"]
    assert "X-Pagination" in listing["responses"]["200"]["headers"]
    metrics = spec["paths"]["/api/v1/patient/{patient_uuid}/metrics"]
    (path_param,) = metrics["parameters"]
    assert path_param["schema"] == {"type": "string", "format": "uuid"}
    query = {p["name"] for p in metrics["get"]["parameters"] if p["in"] == "query"}
    assert query == {"from", "to", "limit"}
    assert {"200", "404", "422"} <= set(metrics["get"]["responses"])
    export = spec["paths"]["/api/v1/patient/{patient_uuid}/metrics.csv"]["get"]
    assert {p["name"]: p["required"] for p in export["parameters"] if p["in"] == "query"} == {
        "from": True,
        "to": True,
    }
    assert list(export["responses"]["200"]["content"]) == ["text/csv"]
    assert {"404", "422", "429"} <= set(export["responses"])


def test_openapi_documents_sign_in(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").json

    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearerAuth"] == {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": schemes["bearerAuth"]["description"],
    }
    assert {key: schemes["cookieAuth"][key] for key in ("type", "in", "name")} == {
        "type": "apiKey",
        "in": "cookie",
        "name": "vigil_session",
    }
    # Every operation needs one of them, unless it says it needs none.
    assert spec["security"] == [{"bearerAuth": []}, {"cookieAuth": []}]
    operations = {
        (method.upper(), path): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method != "parameters"
    }
    public = {key for key, operation in operations.items() if operation.get("security") == []}
    assert public == {("GET", "/health"), ("POST", "/api/v1/auth/token")}
    for key, operation in operations.items():
        if key not in public:
            assert "security" not in operation, key
            assert operation["responses"]["401"] == {"$ref": "#/components/responses/UNAUTHORIZED"}
    # 403 where a signed-in caller may still be refused: not on who-am-I, which anyone may ask.
    assert "403" in operations[("GET", "/api/v1/patients")]["responses"]
    assert "403" in operations[("DELETE", "/api/v1/auth/tokens/{token_id}")]["responses"]
    assert "403" not in operations[("GET", "/api/v1/auth/me")]["responses"]
    assert "401" not in operations[("GET", "/health")]["responses"]


def test_the_document_and_swagger_ui_need_sign_in(anonymous: FlaskClient) -> None:
    document = anonymous.get("/openapi.json")
    assert document.status_code == 401
    assert document.headers["WWW-Authenticate"].lower().startswith("bearer")
    assert set(document.json) == {"code", "status", "message", "errors"}
    # A page: refused, or sent to the login page.
    assert anonymous.get("/docs").status_code in {401, 302}
    # Its scripts and styles hold no data: the login page may use them.
    with anonymous.get("/docs/assets/swagger-ui.css") as stylesheet:
        assert stylesheet.status_code == 200


def test_swagger_ui_uses_only_local_assets(client: FlaskClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "://" not in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    # Swagger UI's stylesheet and two scripts, and the script that starts it (the page may
    # run no inline script: shared.web_security).
    assert len(assets) == 5
    assert assets[0] == "data:,"
    assert assets[-1] == "/static/dashboard/js/docs.js"
    for asset in assets[1:]:
        assert asset.startswith(("/docs/assets/", "/static/dashboard/js/"))
        with client.get(asset) as served:
            assert served.status_code == 200, asset
            if asset.endswith(".js"):
                assert "javascript" in served.content_type
                assert b"SwaggerUI" in served.data
