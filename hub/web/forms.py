"""Reading a posted HTML form in the synchronous staff routes: the form itself, and one field as trimmed text."""

from __future__ import annotations

from fastapi import Request
from starlette.datastructures import FormData


async def posted_form(request: Request) -> FormData:
    """The posted form, read once (the CSRF check has read it already) for the synchronous routes."""
    return await request.form()


def form_text(form: FormData, name: str) -> str:
    """The field's text without surrounding blanks; empty when it is missing or a file."""
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""
