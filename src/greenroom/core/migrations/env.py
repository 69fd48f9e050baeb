"""Alembic environment: runs on the connection handed over by ``greenroom.core.db.upgrade``."""

from alembic import context

from greenroom.core.db import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
context.run_migrations()
