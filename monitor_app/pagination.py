"""Paginated views: the Blueprint documenting X-Pagination as the JSON object it carries,
and the check for a page past the last."""

from __future__ import annotations

from typing import Any

from flask_smorest import Blueprint
from flask_smorest.pagination import PaginationMetadataSchema, PaginationParameters


class PaginatedBlueprint(Blueprint):
    """A flask-smorest Blueprint whose `@paginate` views document X-Pagination truthfully."""

    def _document_pagination_metadata(self, spec: Any, resp_doc: dict[str, Any]) -> None:
        # flask-smorest gives the header a `schema`, which OpenAPI 3 reads as a comma-separated
        # value (`total,3,page,1`); the header is JSON, and only `content` can say so.
        resp_doc.setdefault("headers", {})[self.PAGINATION_HEADER_NAME] = {
            "description": "Pagination metadata, as a JSON object.",
            "content": {"application/json": {"schema": PaginationMetadataSchema}},
        }


def past_last_page(pagination: PaginationParameters) -> bool:
    """Whether the page starts after the last item (`item_count` set). There is nothing to
    read then, and an offset that large could overflow the database's integers."""
    return pagination.first_item >= pagination.item_count
