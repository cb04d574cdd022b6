"""Backups that restore: the database (attachments and photos are rows in it) and the settings it needs, one archive.

PostgreSQL is dumped by `pg_dump` in its custom format and read back by `pg_restore`; the embedded
SQLite database is copied with SQLite's online backup API. Both copy one snapshot while the hub keeps
running, and the archive's manifest counts the rows of that same snapshot, so a restore can prove it
got every row.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, Engine, create_engine, inspect, make_url, text

from hub.db import utcnow
from hub.errors import Conflict, InvalidInput
from hub.i18n import N_
from hub.migrate import SchemaState, code_head, code_version, upgrade_to_head
from hub.settings import Settings

FORMAT = 1
MANIFEST = "manifest.json"
SETTINGS = "settings.env"
# Without these a restored hub would refuse every link it signed (opt-in, unsubscribe, bookings) and every
# one-time code it hashed, and providers sign their webhooks over the public URL.
RESTORE_SETTINGS = ("secret_key", "public_url")
DUMPS = {"sqlite": "database.sqlite", "postgresql": "database.pgdump"}
# The names of the archives a folder's backups get (`rathaus backup FOLDER`), which --keep prunes.
DATED_PREFIX = "rathaus-"
# What a restore writes beside the database when the archive's settings differ from the ones in force.
RESTORED_SETTINGS_FILE = "restored-settings.env"


@dataclass(frozen=True)
class Manifest:
    """What an archive holds: which hub and schema wrote it, from which backend, and its rows per table."""

    backend: str
    version: str
    schema: str | None
    created_at: str
    rows: dict[str, int]


@dataclass(frozen=True)
class Restored:
    """What a restore did: the manifest it checked the rows against, and the settings that differ from the archive's."""

    manifest: Manifest
    differing_settings: list[str]
    settings_file: Path | None


def backend_of(engine: Engine) -> str:
    return engine.dialect.name


def _row_counts(connection: Connection) -> dict[str, int]:
    names = sorted(inspect(connection).get_table_names())
    # The names come from the database's own catalogue, quoted as identifiers.
    count = 'SELECT count(*) FROM "{}"'
    return {name: int(connection.execute(text(count.format(name))).scalar_one()) for name in names}


def _libpq(engine: Engine) -> tuple[str, dict[str, str]]:
    """The database as pg_dump and pg_restore name it, and the environment that carries its password (not argv)."""
    url = engine.url
    env = {**os.environ}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _settings_env(settings: Settings) -> bytes:
    return "".join(f"RATHAUS_{name.upper()}={getattr(settings, name)}\n" for name in RESTORE_SETTINGS).encode()


def _add(archive: tarfile.TarFile, name: str, content: bytes) -> None:
    member = tarfile.TarInfo(name)
    member.size, member.mode, member.mtime = len(content), 0o600, int(utcnow().timestamp())
    archive.addfile(member, io.BytesIO(content))


def backup(*, engine: Engine, settings: Settings, target: Path) -> Manifest:
    """Writes the archive to `target` (mode 0600: it holds citizens' data and the secret key); returns its manifest.

    The archive appears under its name only once complete, so a backup that fails leaves no half archive.
    """
    backend = backend_of(engine)
    if backend not in DUMPS:
        raise InvalidInput(N_("Sicherungen gibt es für SQLite und PostgreSQL, nicht für {backend}."), backend=backend)
    target = target.resolve()
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".rathaus-backup-") as work:
        dump = Path(work) / DUMPS[backend]
        snapshot = _dump_sqlite if backend == "sqlite" else _dump_postgresql
        manifest = snapshot(engine, dump)
        partial = Path(work) / "archive.tar"
        # pg_dump's custom format is compressed already; SQLite's file is not, but attachments mostly are
        # (PDF, JPEG): gzip's fastest level takes most of what there is to gain at a fraction of its time.
        options: dict[str, Any] = {"mode": "w:gz", "compresslevel": 1} if backend == "sqlite" else {"mode": "w"}
        with tarfile.open(partial, **options) as archive:
            _add(archive, MANIFEST, json.dumps({"format": FORMAT, **asdict(manifest)}, indent=2).encode())
            _add(archive, SETTINGS, _settings_env(settings))
            archive.add(dump, arcname=DUMPS[backend])
        partial.chmod(0o600)
        partial.replace(target)
    return manifest


def dated_in(folder: Path) -> Path:
    """A new archive's name in `folder`, by the time it is taken, so that names sort as the backups were made."""
    if not folder.is_dir():
        raise InvalidInput(N_("--keep braucht einen Ordner, {target} ist keiner."), target=str(folder))
    return folder / f"{DATED_PREFIX}{utcnow().strftime('%Y%m%dT%H%M%SZ')}.tar"


def prune(folder: Path, *, keep: int) -> list[Path]:
    """Deletes all but the `keep` newest dated archives in `folder` (files it did not name stay); returns them."""
    dated = sorted(folder.glob(f"{DATED_PREFIX}*.tar"))
    old = dated[: max(len(dated) - keep, 0)]
    for path in old:
        path.unlink()
    return old


def _manifest(backend: str, schema: str | None, rows: dict[str, int]) -> Manifest:
    return Manifest(backend=backend, version=code_version(), schema=schema, created_at=utcnow().isoformat(), rows=rows)


def _dump_sqlite(engine: Engine, dump: Path) -> Manifest:
    database = make_url(str(engine.url)).database
    assert database
    # One step (pages=-1) copies the whole database inside one read transaction: in WAL mode the hub's
    # writers go on meanwhile and the copy is the database as it was when the step began.
    with closing(sqlite3.connect(database)) as source, closing(sqlite3.connect(dump)) as copy:
        source.backup(copy)
    copied = create_engine(f"sqlite:///{dump}")
    try:
        with copied.connect() as connection:
            return _manifest("sqlite", _revision(connection), _row_counts(connection))
    finally:
        copied.dispose()


def _revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def _dump_postgresql(engine: Engine, dump: Path) -> Manifest:
    database, env = _libpq(engine)
    with engine.connect() as connection:
        # pg_dump reads the snapshot this transaction exported, so the counts and the dump see the same rows.
        connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY"))
        snapshot = connection.execute(text("SELECT pg_export_snapshot()")).scalar_one()
        rows, schema = _row_counts(connection), _revision(connection)
        _run(["pg_dump", "--format=custom", "--no-owner", "--no-privileges", f"--snapshot={snapshot}",
              f"--file={dump}", f"--dbname={database}"], env)  # fmt: skip
        connection.rollback()
    return _manifest("postgresql", schema, rows)


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)  # noqa: S603
    if done.returncode != 0:
        raise InvalidInput(N_("{program} ist gescheitert: {error}"), program=command[0], error=done.stderr.strip())


@contextmanager
def _opened(source: Path, *, backend: str) -> Iterator[tuple[Manifest, bytes, Path]]:
    """The archive's manifest, its settings file and its dump of `backend`, unpacked into a temporary folder."""
    not_a_backup = InvalidInput(N_("{file} ist keine Sicherung von Rathaus Hub."), file=str(source))
    with ExitStack() as stack:
        try:
            archive = stack.enter_context(tarfile.open(source, "r:*"))
            described = json.loads(_read(archive, MANIFEST))
            if described.pop("format") != FORMAT:
                raise ValueError
            manifest = Manifest(**described)
        except (OSError, KeyError, ValueError, TypeError, tarfile.TarError):
            raise not_a_backup from None
        if manifest.backend != backend:
            raise InvalidInput(N_("Die Sicherung stammt aus {archive}, die Datenbank hier ist {database}."),
                               archive=manifest.backend, database=backend)  # fmt: skip
        work = stack.enter_context(tempfile.TemporaryDirectory(prefix="rathaus-restore-"))
        try:
            env = _read(archive, SETTINGS)
            dump = Path(work) / DUMPS[backend]
            dump.write_bytes(_read(archive, DUMPS[backend]))
        except (KeyError, tarfile.TarError):
            raise not_a_backup from None
        yield manifest, env, dump


def _read(archive: tarfile.TarFile, name: str) -> bytes:
    member = archive.extractfile(name)
    if member is None:
        raise KeyError(name)
    return member.read()


def restore(*, engine: Engine, settings: Settings, source: Path) -> Restored:
    """Restores the archive into the configured database, which must be empty, and migrates it to the code's head."""
    backend = backend_of(engine)
    with _opened(source, backend=backend) as (manifest, env, dump):
        archived = SchemaState(code=code_head(), database=manifest.schema)
        if archived.state == "ahead":
            raise InvalidInput(N_("Die Sicherung hat den Migrationsstand {archive}, den dieser Code nicht kennt "
                                  "(seiner ist {code}): bitte mit der neueren Version zurückspielen."),
                               archive=manifest.schema, code=archived.code)  # fmt: skip
        with engine.connect() as connection:
            tables = inspect(connection).get_table_names()
        if tables:
            raise Conflict(N_("Die Datenbank ist nicht leer ({count} Tabellen): eine Sicherung wird nur in eine "
                              "leere Datenbank zurückgespielt."), count=len(tables))  # fmt: skip
        # On PostgreSQL, what was there before (no tables, perhaps an extension's types) stays if the check fails.
        before = _postgresql_objects(engine) if backend == "postgresql" else set()
        if backend == "sqlite":
            _restore_sqlite(engine, dump)
        else:
            database, environment = _libpq(engine)
            _run(["pg_restore", "--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction",
                  f"--dbname={database}", str(dump)], environment)  # fmt: skip
        with engine.connect() as connection:
            found = _row_counts(connection)
        if found != manifest.rows:
            # A hub started on rows that are not the backup's would serve a past that never was: what came in
            # goes again, so that the database is as empty as it was and the operator can take another archive.
            if backend == "sqlite":
                _empty_sqlite(engine)
            else:
                _drop_postgresql_objects(engine, keep=before)
            missing = sorted(name for name in manifest.rows if found.get(name) != manifest.rows[name])
            raise InvalidInput(N_("Nach dem Zurückspielen stimmen die Zeilen nicht: {tables}. Das Zurückgespielte "
                                  "ist wieder gelöscht, die Datenbank ist leer wie zuvor."),
                               tables=", ".join(missing))  # fmt: skip
        differing, written = _compare_settings(settings, env)
    upgrade_to_head()
    return Restored(manifest=manifest, differing_settings=differing, settings_file=written)


def _restore_sqlite(engine: Engine, dump: Path) -> None:
    database = make_url(str(engine.url)).database
    assert database
    engine.dispose()  # the hub's own connections saw the empty database
    with closing(sqlite3.connect(dump)) as source, closing(sqlite3.connect(database)) as target:
        source.backup(target)


def _empty_sqlite(engine: Engine) -> None:
    """Copies an empty database over the restored one, as the backup API copied the archive's over the empty one."""
    database = make_url(str(engine.url)).database
    assert database
    engine.dispose()
    with closing(sqlite3.connect(":memory:")) as empty, closing(sqlite3.connect(database)) as target:
        empty.backup(target)


# What pg_restore can create outside the system schemas (relations, types, functions), each as the DROP statement
# that removes it; extensions' own objects are the extension's, not the backup's.
_POSTGRESQL_OBJECTS = """
SELECT 'DROP ' || CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                                 WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END
       || ' IF EXISTS ' || format('%I.%I', n.nspname, c.relname) || ' CASCADE'
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND n.nspname <> 'information_schema'
   AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
UNION ALL
SELECT 'DROP TYPE IF EXISTS ' || format('%I.%I', n.nspname, t.typname) || ' CASCADE'
  FROM pg_type t JOIN pg_namespace n ON n.oid = t.typnamespace
 WHERE t.typtype IN ('e', 'd', 'r', 'm') AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
UNION ALL
SELECT 'DROP ROUTINE IF EXISTS ' || p.oid::regprocedure::text || ' CASCADE'
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
   AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
"""


def _postgresql_objects(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text(_POSTGRESQL_OBJECTS)).scalars())


def _drop_postgresql_objects(engine: Engine, *, keep: set[str]) -> None:
    """Drops, in one transaction, what is in the database now and was not in `keep` (CASCADE takes the indexes,
    constraints and sequences of a table with it, hence IF EXISTS for the ones it took already)."""
    with engine.begin() as connection:
        for statement in sorted(set(connection.execute(text(_POSTGRESQL_OBJECTS)).scalars()) - keep):
            connection.execute(text(statement))


def _compare_settings(settings: Settings, env: bytes) -> tuple[list[str], Path | None]:
    """Names of the settings in force that differ from the archive's; the archive's are written beside the data."""
    archived = dict(line.split("=", 1) for line in env.decode().splitlines() if "=" in line)
    differing = [name for name, value in archived.items() if value != str(getattr(settings, name[8:].lower(), ""))]
    if not differing:
        return [], None
    written = settings.data_dir / RESTORED_SETTINGS_FILE
    written.touch(mode=0o600)
    written.write_bytes(env)
    return differing, written
