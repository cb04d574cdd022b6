"""What `rathaus restore` refuses, in German, before it touches the database, and the settings it hands back."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from hub import db
from hub import settings as settings_module
from hub.backup import MANIFEST, RESTORED_SETTINGS_FILE, backup, restore
from hub.cli import main
from hub.errors import Conflict, InvalidInput
from hub.settings import Settings


def test_a_restore_into_a_database_with_tables_is_refused(backend_settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "sicherung.tar"
    backup(engine=db.get_engine(), settings=backend_settings, target=archive)
    with pytest.raises(Conflict, match="nur in eine leere Datenbank"):
        restore(engine=db.get_engine(), settings=backend_settings, source=archive)
    refused = CliRunner().invoke(main, ["restore", str(archive)])
    assert refused.exit_code == 1 and "ist nicht leer" in refused.output


def test_a_file_that_is_no_backup_is_named(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "notizen.txt").write_text("keine Sicherung")
    with pytest.raises(InvalidInput, match=r"notizen\.txt ist keine Sicherung von Rathaus Hub"):
        restore(engine=db.get_engine(), settings=settings, source=tmp_path / "notizen.txt")


def rewritten(archive: Path, **manifest: object) -> Path:
    """A copy of the archive whose manifest says other things."""
    changed = archive.with_name("geaendert.tar")
    with tarfile.open(archive) as source, tarfile.open(changed, "w") as target:
        for member in source.getmembers():
            content = source.extractfile(member).read()  # type: ignore[union-attr]
            if member.name == MANIFEST:
                content = json.dumps({**json.loads(content), **manifest}).encode()
                member.size = len(content)
            target.addfile(member, io.BytesIO(content))
    return changed


def test_a_backup_of_a_newer_version_or_another_backend_is_refused(settings: Settings, tmp_path: Path) -> None:
    archive = tmp_path / "sicherung.tar"
    backup(engine=db.get_engine(), settings=settings, target=archive)
    with pytest.raises(InvalidInput, match="Migrationsstand 9999, den dieser Code nicht kennt"):
        restore(engine=db.get_engine(), settings=settings, source=rewritten(archive, schema="9999"))
    with pytest.raises(InvalidInput, match="Die Sicherung stammt aus postgresql, die Datenbank hier ist sqlite"):
        restore(engine=db.get_engine(), settings=settings, source=rewritten(archive, backend="postgresql"))


def test_settings_that_differ_from_the_backup_are_written_beside_the_data(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RATHAUS_SECRET_KEY", "der-alte-schluessel-" * 4)
    settings_module.get_settings.cache_clear()
    archive = tmp_path / "sicherung.tar"
    backup(engine=db.get_engine(), settings=settings_module.get_settings(), target=archive)

    monkeypatch.setenv("RATHAUS_DATA_DIR", str(tmp_path / "neu"))
    monkeypatch.setenv("RATHAUS_SECRET_KEY", "ein-neuer-schluessel-" * 4)
    settings_module.get_settings.cache_clear()
    db.get_engine.cache_clear()
    restored = CliRunner().invoke(main, ["restore", str(archive)])
    assert restored.exit_code == 0, restored.output
    assert "Anders als in der Sicherung: RATHAUS_SECRET_KEY" in restored.output
    written = tmp_path / "neu" / RESTORED_SETTINGS_FILE
    assert f"RATHAUS_SECRET_KEY={'der-alte-schluessel-' * 4}" in written.read_text()
    assert written.stat().st_mode & 0o077 == 0
    db.get_engine().dispose()


def test_a_folder_gets_dated_backups_and_keep_leaves_the_newest(settings: Settings, tmp_path: Path) -> None:
    folder = tmp_path / "sicherungen"
    folder.mkdir()
    (folder / "rathaus-20260101T000000Z.tar").write_bytes(b"alt")
    (folder / "rathaus-20260102T000000Z.tar").write_bytes(b"alt")
    (folder / "notizen.txt").write_text("bleibt")
    written = CliRunner().invoke(main, ["backup", str(folder), "--keep", "2"])
    assert written.exit_code == 0, written.output
    kept = sorted(path.name for path in folder.iterdir())
    assert kept[0] == "notizen.txt" and kept[1] == "rathaus-20260102T000000Z.tar" and len(kept) == 3
    assert "rathaus-20260101T000000Z.tar gelöscht" in written.output
    assert (folder / kept[2]).stat().st_size > 1000

    refused = CliRunner().invoke(main, ["backup", str(tmp_path / "eine.tar"), "--keep", "2"])
    assert refused.exit_code == 1 and "--keep braucht einen Ordner" in refused.output
    assert not (tmp_path / "eine.tar").exists()


def _emptied(engine: sa.Engine) -> None:
    """Removes every table of the test's database, as if it had just been created."""
    if engine.dialect.name == "sqlite":
        engine.dispose()
        Path(str(engine.url.database)).unlink()
        return
    with engine.begin() as connection:
        connection.execute(sa.text("DROP SCHEMA public CASCADE"))
        connection.execute(sa.text("CREATE SCHEMA public"))


def test_a_restore_whose_rows_do_not_match_leaves_the_database_empty(
    backend_settings: Settings, tmp_path: Path
) -> None:
    archive = tmp_path / "sicherung.tar"
    manifest = backup(engine=db.get_engine(), settings=backend_settings, target=archive)
    # An archive whose manifest promises a row its dump does not hold, as a damaged or tampered one would.
    wrong = rewritten(archive, rows={**manifest.rows, "municipality": manifest.rows["municipality"] + 1})
    _emptied(db.get_engine())

    refused = CliRunner().invoke(main, ["restore", str(wrong)])
    assert refused.exit_code == 1
    assert "stimmen die Zeilen nicht: municipality. Das Zurückgespielte ist wieder gelöscht" in refused.output
    with db.get_engine().connect() as connection:
        assert sa.inspect(connection).get_table_names() == []
        if connection.dialect.name == "postgresql":
            left = connection.execute(sa.text("SELECT count(*) FROM pg_class c JOIN pg_namespace n "
                                              "ON n.oid = c.relnamespace WHERE n.nspname = 'public'"))  # fmt: skip
            assert left.scalar_one() == 0

    # Nothing of the first attempt is in the way: the sound archive restores into the same database.
    restored = CliRunner().invoke(main, ["restore", str(archive)])
    assert restored.exit_code == 0, restored.output
    with db.get_engine().connect() as connection:
        assert (
            connection.execute(sa.text("SELECT count(*) FROM municipality")).scalar_one()
            == manifest.rows["municipality"]
        )
