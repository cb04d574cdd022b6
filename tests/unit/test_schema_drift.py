"""The models and the migrated schema agree on both backends: a model change without its migration fails `make lint`.

This is `alembic check` (the same autogenerate comparison, types included) run on a fresh database of
each backend, with the search structures that only the migrations make left out of the comparison.
"""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy.schema import SchemaItem
from sqlmodel import SQLModel

import hub.models  # noqa: F401  (registers every table on SQLModel.metadata)
from hub import db
from hub.settings import Settings

# The full-text search lives outside the models (hub/inbox/search.py): SQLite's FTS5 table with its
# shadow tables, and PostgreSQL's expression index over to_tsvector('german', body).
MIGRATION_ONLY = ("message_search", "ix_message_body_search")


def made_by_models(item: SchemaItem, name: str | None, kind: str, reflected: bool, compare_to: object) -> bool:
    return not (reflected and name is not None and name.startswith(MIGRATION_ONLY))


def test_the_migrations_make_the_schema_the_models_describe(backend_settings: Settings) -> None:
    with db.get_engine().connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True, "include_object": made_by_models})
        differences = compare_metadata(context, SQLModel.metadata)
    assert differences == [], f"models and migrations differ; write the migration for: {differences}"
