"""Full-text search over messages: PostgreSQL's German configuration, or SQLite's FTS5 table `message_search`."""

from __future__ import annotations

import re

from sqlalchemy import ColumnElement, Integer, column, false, func, or_, select, text
from sqlmodel import Session, col

from hub.inbox.models import Conversation, Message


def fts5_query(words: str) -> str:
    """The user's words as an FTS5 query that cannot be a syntax error: each word a quoted prefix, all required.

    Only letters and digits are kept (the unicode61 tokenizer splits on everything else
    anyway), and quoting turns FTS5's operators (AND, OR, NOT, NEAR) into plain words.
    """
    return " ".join(f'"{word}"*' for word in re.findall(r"\w+", words))


def conversation_matches(session: Session, *, municipality_id: int, words: str) -> ColumnElement[bool]:
    """A condition on Conversation: one of its messages (or notes) matches `words`, or its reference is `words`.

    PostgreSQL uses the GIN index on to_tsvector('german', body) with websearch syntax
    ("quoted phrases", -excluded, or); SQLite the FTS5 table kept in step by triggers.
    """
    words = words.strip()
    if not words:
        return false()
    if session.get_bind().dialect.name == "postgresql":
        matched = func.to_tsvector("german", col(Message.body)).bool_op("@@")(
            func.websearch_to_tsquery("german", words)
        )
    else:
        query = fts5_query(words)
        if not query:
            return false()
        rowids = text("SELECT rowid FROM message_search WHERE message_search MATCH :query").bindparams(query=query)
        matched = col(Message.id).in_(rowids.columns(column("rowid", Integer)))
    messages = select(col(Message.conversation_id)).where(col(Message.municipality_id) == municipality_id, matched)
    return or_(col(Conversation.reference) == words.upper(), col(Conversation.id).in_(messages))
