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
        "/api/v1/patient/{patient_uuid}/metrics",
        "/api/v1/patient/{patient_uuid}/history",
        "/health",
        "/api/v1/notifications",
        "/api/v1/notifications/{notification_id}",
        "/api/v1/notifications/{notification_id}/read",
        "/api/v1/notifications/{notification_id}/status",
    }
    listing = spec["paths"]["/api/v1/patients"]["get"]
    assert "X-Pagination" in listing["responses"]["200"]["headers"]
    metrics = spec["paths"]["/api/v1/patient/{patient_uuid}/metrics"]
    (path_param,) = metrics["parameters"]
    assert path_param["schema"] == {"type": "string", "format": "uuid"}
    query = {p["name"] for p in metrics["get"]["parameters"] if p["in"] == "query"}
    assert query == {"from", "to", "limit"}
    assert {"200", "404", "422"} <= set(metrics["get"]["responses"])


def test_swagger_ui_uses_only_local_assets(client: FlaskClient) -> None:
    response = client.get("/docs")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "://" not in page
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert len(assets) == 3
    for asset in assets:
        assert asset.startswith("/docs/assets/")
        with client.get(asset) as served:
            assert served.status_code == 200, asset
            if asset.endswith(".js"):
                assert "javascript" in served.content_type
                assert b"SwaggerUI" in served.data
