"""Migrations add before they remove, so that the old and the new API process can run side by side on one schema.

What a reader can check mechanically is checked here (docs/it/sicherung.md, "Ohne Ausfall", has the rule):
an upgrade step that removes or renames a table or column, or makes a column NOT NULL, carries a
`# contract: …` comment saying which earlier release stopped using it; a column added NOT NULL to an
existing table has a `server_default`, or the old process's inserts (which do not name it) would fail.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

VERSIONS = Path(__file__).resolve().parents[2] / "hub" / "migrations" / "versions"
MARKER = re.compile(r"#\s*contract:\s*\S")
# Operations after which a process of the release before can no longer read or write what it knows.
CONTRACTING = {"drop_column", "drop_table", "rename_table"}
RAW_CONTRACTING = re.compile(r"\b(DROP\s+(COLUMN|TABLE)|RENAME\s+(COLUMN|TO)|SET\s+NOT\s+NULL)\b", re.IGNORECASE)


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((keyword.value for keyword in call.keywords if keyword.arg == name), None)


def _is_false(node: ast.expr | None) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def _contracts(call: ast.Call, operation: str) -> str | None:
    """Why `call` removes something the release before uses, if it does."""
    if operation in CONTRACTING:
        return operation
    if operation == "alter_column" and _keyword(call, "new_column_name") is not None:
        return "alter_column(new_column_name=…)"
    if operation == "alter_column" and _is_false(_keyword(call, "nullable")):
        return "alter_column(nullable=False)"
    if operation == "execute":
        for node in ast.walk(call):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and RAW_CONTRACTING.search(node.value):
                return f"execute({node.value[:40]!r})"
    return None


def _not_null_without_default(call: ast.Call, operation: str) -> bool:
    """An added column that existing rows and the old process's inserts cannot fill."""
    if operation != "add_column":
        return False
    for column in ast.walk(call):
        if isinstance(column, ast.Call) and getattr(column.func, "attr", getattr(column.func, "id", "")) == "Column":
            not_null = _is_false(_keyword(column, "nullable")) or _keyword(column, "primary_key") is not None
            return not_null and _keyword(column, "server_default") is None
    return False


def violations(source: str) -> list[str]:
    """What in the upgrade() of a migration's `source` breaks the rule, each with its line."""
    lines = source.splitlines()
    upgrade = next(
        node for node in ast.parse(source).body if isinstance(node, ast.FunctionDef) and node.name == "upgrade"
    )
    found: list[tuple[int, str]] = []
    for call in ast.walk(upgrade):
        if not isinstance(call, ast.Call) or not isinstance(call.func, ast.Attribute):
            continue
        operation = call.func.attr
        # The comment sits on the call's first line or on the line just above it.
        marked = any(MARKER.search(lines[number]) for number in (call.lineno - 2, call.lineno - 1) if number >= 0)
        if (why := _contracts(call, operation)) is not None and not marked:
            found.append((call.lineno, f"{why} without '# contract: <release that stopped using it>'"))
        if _not_null_without_default(call, operation):
            found.append((call.lineno, "add_column NOT NULL without server_default"))
    return [f"line {number}: {problem}" for number, problem in sorted(found)]


# Every migration, the released ones too: each of them already kept to the rule, so none needs an exception.
MIGRATIONS = sorted(VERSIONS.glob("[0-9]*_*.py"))


@pytest.mark.parametrize("migration", MIGRATIONS, ids=lambda path: path.stem)
def test_each_migration_adds_before_it_removes(migration: Path) -> None:
    assert violations(migration.read_text()) == []


def test_removing_or_renaming_needs_the_marker_and_a_new_not_null_column_a_default() -> None:
    offending = """
def upgrade():
    op.drop_column("contact", "fax")
    with op.batch_alter_table("message") as batch_op:
        batch_op.alter_column("body", new_column_name="text")
        batch_op.alter_column("channel_id", nullable=False)
    op.add_column("contact", sa.Column("language", sa.String(), nullable=False))
    op.execute("ALTER TABLE booking DROP COLUMN note")
"""
    assert [problem.split(":")[0] for problem in violations(offending)] == [
        "line 3", "line 5", "line 6", "line 7", "line 8"
    ]  # fmt: skip

    following = """
def upgrade():
    # contract: 0.9 stopped reading contact.fax
    op.drop_column("contact", "fax")
    op.alter_column("message", "body", new_column_name="text")  # contract: 0.9 reads message.text
    op.add_column("contact", sa.Column("language", sa.String(), nullable=False, server_default="de"))
    op.add_column("contact", sa.Column("note", sa.String(), nullable=True))
    op.create_table("survey", sa.Column("id", sa.Integer(), nullable=False))

def downgrade():
    op.drop_column("contact", "language")
"""
    assert violations(following) == []
