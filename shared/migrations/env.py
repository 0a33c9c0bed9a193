"""Alembic environment: runs on the connection `shared.db.migrate` hands over."""

from alembic import context

import shared.audit  # noqa: F401  (registers the tables on Base.metadata)
import shared.identity  # noqa: F401
import shared.models  # noqa: F401
from shared.db import Base
from shared.partitions import include_name

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    include_name=include_name,
)
with context.begin_transaction():
    context.run_migrations()
