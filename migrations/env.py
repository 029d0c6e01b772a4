"""Alembic environment: paperlab hands over an open connection in `config.attributes["connection"]`."""

from alembic import context

from paperlab.library.models import SQLModel

target_metadata = SQLModel.metadata
connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations through paperlab.library.db.open_engine()")
context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
