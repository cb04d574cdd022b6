"""Every file the hub hands out (attachments, CSV and JSON exports) as a download that keeps its name (RFC 6266)."""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from fastapi.responses import Response

# Used when nothing printable is left of a name.
UNNAMED = "datei"


def content_disposition(filename: str) -> str:
    """`attachment` with an ASCII `filename` for every client and, if the name needs more, its UTF-8 `filename*`.

    HTTP headers carry Latin-1 at most, so a name such as "申请.pdf" only fits percent-encoded
    (RFC 8187); clients that know `filename*` prefer it, older ones keep the fallback.
    """
    # Control and format characters could end the header or (U+202E) show "gpj.exe" as "exe.jpg".
    name = "".join(char for char in filename if not unicodedata.category(char).startswith("C")).strip() or UNNAMED
    decomposed = unicodedata.normalize("NFKD", name)
    fallback = "".join(
        char if char.isascii() and char not in '"\\' else "_"
        for char in decomposed
        if not unicodedata.combining(char)  # "ü" keeps its "u"
    )
    if fallback == name:
        return f'attachment; filename="{name}"'
    return f"attachment; filename=\"{fallback}\"; filename*=UTF-8''{quote(name, safe='')}"


def download(content: bytes | str, *, filename: str, media_type: str) -> Response:
    """A response that browsers save as `filename` rather than show."""
    return Response(content, media_type=media_type, headers={"Content-Disposition": content_disposition(filename)})
