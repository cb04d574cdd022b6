"""Alembic environment: migrates the database named by the hub's settings."""

from alembic import context
from sqlmodel import SQLModel

import hub.models  # noqa: F401  (registers every table on SQLModel.metadata)
from hub.db import get_engine

target_metadata = SQLModel.metadata


def run_migrations_online() -> None:
    engine = get_engine()
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()


run_migrations_online()
