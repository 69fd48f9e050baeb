"""Alembic environment: runs on the connection handed over by ``greenroom.core.db.upgrade``."""

from alembic import context

from greenroom.core.db import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    # Autogenerate compares one context at a time: never drop another context's tables.
    include_object=lambda obj, name, type_, reflected, compare_to: not (reflected and compare_to is None),
)
context.run_migrations()
