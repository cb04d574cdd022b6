"""The record of processing activities as a printable, self-contained HTML document, for the admin page and the CLI."""

from __future__ import annotations

from hub.tenancy.processing_record import ProcessingRecord
from hub.web.rendering import environment

TEMPLATE = "ui/staff/admin/processing_record.html"


def record_document(record: ProcessingRecord, *, language: str) -> str:
    """The document in `language`; it loads nothing, so it prints and files the same offline."""
    return environment(language).get_template(TEMPLATE).render(record=record, lang=language)
