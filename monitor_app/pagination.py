"""The Blueprint of paginated views, documenting X-Pagination as the JSON object it carries."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationMetadataSchema


class PaginatedBlueprint(Blueprint):
    """A flask-smorest Blueprint whose `@paginate` views document X-Pagination truthfully."""

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        # flask-smorest gives the header a `schema`, which OpenAPI 3 reads as a comma-separated
        # value (`total,3,page,1`); the header is JSON, and only `content` can say so.
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "Pagination metadata, as a JSON object.",
            "content": {"application/json": {"schema": PaginationMetadataSchema}},
        }
