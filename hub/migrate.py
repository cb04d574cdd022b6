"""Applies the Alembic migrations to the configured database and tells whether its schema matches the code."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from gettext import NullTranslations
from importlib.metadata import version
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

from hub.errors import Phrase, in_language
from hub.i18n import N_

MIGRATIONS = Path(__file__).parent / "migrations"

# What `rathaus version` and /healthz say when the schema and the code differ, msgids filled with the revisions.
BEHIND = N_("Die Datenbank ist auf Stand {database}, der Code erwartet {code}: bitte `rathaus migrate` ausführen.")
AHEAD = N_(
    "Die Datenbank ist auf Stand {database}, den dieser Code nicht kennt (seiner ist {code}): "
    "sie wurde von einer neueren Version migriert."
)
EMPTY = N_("Die Datenbank ist leer: bitte `rathaus migrate` ausführen.")


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def upgrade_to_head() -> None:
    command.upgrade(alembic_config(), "head")


def code_version() -> str:
    return version("rathaus-hub")


@lru_cache
def _scripts() -> ScriptDirectory:
    return ScriptDirectory.from_config(alembic_config())


def code_head() -> str:
    head = _scripts().get_current_head()
    assert head is not None
    return head


@dataclass(frozen=True)
class SchemaState:
    """The code's migration head beside the database's, and which way they differ."""

    code: str
    database: str | None

    @property
    def state(self) -> str:
        """current, behind (the database needs `rathaus migrate`), ahead (a newer version migrated it) or empty."""
        if self.database == self.code:
            return "current"
        if self.database is None:
            return "empty"
        known = {script.revision for script in _scripts().walk_revisions()}
        return "behind" if self.database in known else "ahead"

    def difference(self) -> Phrase | None:
        """What differs, to be said in the reader's language, or None when the database is on the code's head."""
        message = {"behind": BEHIND, "ahead": AHEAD, "empty": EMPTY}.get(self.state)
        return None if message is None else Phrase(message, database=self.database, code=self.code)

    def problem(self, texts: NullTranslations) -> str | None:
        """The difference in the language of `texts`."""
        difference = self.difference()
        return None if difference is None else str(in_language(texts, difference))


def schema_state(engine: Engine) -> SchemaState:
    with engine.connect() as connection:
        database = MigrationContext.configure(connection).get_current_revision()
    return SchemaState(code=code_head(), database=database)
