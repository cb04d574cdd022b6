"""Writing to the town on its web form (/{slug}/schreiben): a name, a way back or none, the concern, photos.

For citizens who use none of the messengers: what they write becomes a web case with a reference
and a status link, in the inbox like any message, its photos as the message's attachments.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlmodel import Session

from hub.errors import InvalidInput
from hub.i18n import N_, gettext_for
from hub.inbox.models import Conversation
from hub.tenancy.models import Municipality
from hub.webcases import intake
from hub.webcases.photos import CheckedPhoto

MAX_CONCERN = 5000
MAX_NAME = 200
# The case's subject in the inbox, in German like every case text staff read.
SUBJECT = N_("Über das Webformular")

# How a writer proves the way back: the code and the mail speak of their message.
PROOF = intake.Proof(
    phone_purpose="web-letter-follow", email_purpose="web-letter-follow-email",
    code_template="letter_code.txt.j2", mail_template="letter_confirm.txt.j2", confirm_path="/schreiben/bestaetigen",
)  # fmt: skip
PROOF.register()


def check_letter(name: str, concern: str) -> tuple[str, str]:
    """The name and the concern as they will be kept, or the refusal saying what is wrong with them."""
    text, kept_name = concern.strip(), " ".join(name.split())
    if not text:
        raise InvalidInput(N_("Bitte schreiben Sie, worum es geht."))
    if len(text) > MAX_CONCERN:
        raise InvalidInput(N_("Ihr Anliegen ist zu lang: höchstens {count} Zeichen."), count=MAX_CONCERN)
    if len(kept_name) > MAX_NAME:
        raise InvalidInput(N_("Der Name ist zu lang: höchstens {count} Zeichen."), count=MAX_NAME)
    return kept_name, text


def file_letter(
    session: Session,
    *,
    municipality: Municipality,
    name: str,
    concern: str,
    photos: Sequence[tuple[intake.Upload, CheckedPhoto]],
    language: str,
) -> Conversation:
    """Files a checked letter as a web case with its photos; the caller commits (all or nothing)."""
    kept_name, text = check_letter(name, concern)
    conversation, message = intake.open_case(
        session, municipality=municipality, text=text, language=language, name=kept_name,
        subject=gettext_for("de").gettext(SUBJECT),
    )  # fmt: skip
    for upload, checked in photos:
        session.add(intake.keep_photo(message, upload, checked))
    session.flush()
    return conversation
