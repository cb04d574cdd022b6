"""What every web form that opens a case shares: the way to reach the citizen and its proof, the photos, the case.

A web case is a conversation like any other: its reference, its status link, its team. Until
the citizen proves a phone (code by SMS) or an email address (signed link), its contact is one
with no address, whom nobody can write to; the proof moves the case to the proven contact and
the channel that reaches them. Each form names its own proof (`Proof`), so that the code and the
mail speak of what the citizen sent.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import UploadFile
from sqlmodel import Session, select

from hub.contacts.models import Contact, ContactIdentity
from hub.contacts.service import resolve_contact
from hub.db import utcnow
from hub.errors import ChannelUnavailable, InvalidInput, NotFound
from hub.i18n import N_
from hub.inbox.models import Attachment, Conversation, Message
from hub.inbox.service import open_conversation
from hub.settings import Settings
from hub.subscribers import email_opt_in, verification
from hub.subscribers.models import PhoneVerification
from hub.tenancy.models import ChannelAccount, Municipality
from hub.tenancy.service import channel_reaching
from hub.webcases.photos import CheckedPhoto, check_photo

MAX_PHOTOS = 3
FOLLOW_WAYS = ("none", "phone", "email")


@dataclass(frozen=True)
class Upload:
    """A file as the browser sent it."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class Follow:
    """How the citizen wants to be reached: "none", or a phone or email address to prove."""

    way: str = "none"
    phone: str = ""
    email: str = ""


@dataclass(frozen=True)
class Proof:
    """One form's proof of a way: its verification purposes, the SMS and mail it sends, the page the link opens."""

    phone_purpose: str
    email_purpose: str
    code_template: str
    mail_template: str
    confirm_path: str

    def register(self) -> None:
        """The code's purpose, so that a right code moves the case to the proven number."""
        verification.register_purpose(
            verification.Purpose(name=self.phone_purpose, code_template=self.code_template, apply=_phone_proven)
        )


def check_follow(municipality: Municipality, follow: Follow, language: str) -> Follow:
    """The way checked before anything is stored, so that a mistyped number leaves nothing behind."""
    if follow.way not in FOLLOW_WAYS:
        raise InvalidInput(N_("Bitte wählen Sie, ob und wie wir Sie informieren sollen."))
    if follow.way == "phone":
        return Follow(way="phone", phone=verification.normalise_phone(municipality, follow.phone, language))
    if follow.way == "email":
        return Follow(way="email", email=email_opt_in.check_address(follow.email, language))
    return Follow()


async def read_uploads(files: list[UploadFile], settings: Settings) -> list[Upload]:
    """The form's files, each read one byte past the limit: enough to refuse it as too large without reading all."""
    return [
        Upload(filename=file.filename or "", content_type=file.content_type or "",
               data=await file.read(settings.max_photo_bytes + 1))
        for file in files
    ]  # fmt: skip


def check_photos(settings: Settings, uploads: Sequence[Upload]) -> list[tuple[Upload, CheckedPhoto]]:
    """Every photo checked before any is kept (the photo checks' own refusals)."""
    chosen = [upload for upload in uploads if upload.data or upload.filename]
    if len(chosen) > MAX_PHOTOS:
        raise InvalidInput(N_("Bitte senden Sie höchstens {count} Fotos."), count=MAX_PHOTOS)
    return [(upload, check_photo(upload.data, settings=settings)) for upload in chosen]


def keep_photo(message: Message, upload: Upload, checked: CheckedPhoto) -> Attachment:
    """A checked photo (EXIF gone) as an attachment of `message`; the caller adds it."""
    return Attachment(
        municipality_id=message.municipality_id, message_id=message.id or 0, filename=(upload.filename or "foto")[:200],
        content_type=checked.content_type, size=len(checked.data), data=checked.data,
    )  # fmt: skip


def _web_account(session: Session, municipality_id: int) -> ChannelAccount:
    """The account a web case belongs to until its citizen proves an address: the town's mail, else SMS."""
    for identity in ("email", "phone"):
        account = channel_reaching(session, municipality_id=municipality_id, identity=identity)
        if account is not None:
            return account
    raise ChannelUnavailable(N_("Meldungen über dieses Formular nimmt die Gemeinde derzeit nicht an."))


def open_case(
    session: Session, *, municipality: Municipality, text: str, language: str, subject: str, name: str = ""
) -> tuple[Conversation, Message]:
    """A new case of a citizen without an address yet, with their words as its first inbound message."""
    assert municipality.id is not None
    account = _web_account(session, municipality.id)
    assert account.id is not None
    contact = Contact(municipality_id=municipality.id, language=language)
    if name:
        contact.display_name, contact.name_origin = name, "citizen"
    session.add(contact)
    session.flush()
    assert contact.id is not None
    conversation = open_conversation(session, account=account, contact_id=contact.id, subject=subject)
    assert conversation.id is not None
    now = utcnow()
    message = Message(
        municipality_id=municipality.id, conversation_id=conversation.id, channel_account_id=account.id,
        direction="inbound", body=text, created_at=now,
    )  # fmt: skip
    session.add(message)
    # The response clock runs from the form, as it would from a message.
    conversation.last_inbound_at = conversation.last_activity_at = now
    session.flush()
    return conversation, message


def follow_as(session: Session, *, municipality_id: int, conversation_id: int, kind: str, address: str,
              language: str) -> Contact:  # fmt: skip
    """Moves a web case to the contact proven at `address` and the channel reaching it.

    Only a case still waiting for its citizen's address moves; its placeholder contact goes (its
    name, if given, goes to the proven contact when that has none). Following a second time changes nothing.
    """
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.municipality_id != municipality_id:
        raise NotFound(N_("Diese Meldung gibt es nicht."))
    contact = resolve_contact(session, municipality_id=municipality_id, kind=kind, address=address, language=language)
    account = channel_reaching(session, municipality_id=municipality_id, identity=kind)
    placeholder = session.get(Contact, conversation.contact_id)
    has_address = session.exec(
        select(ContactIdentity.id).where(ContactIdentity.contact_id == conversation.contact_id)
    ).first()
    if account is None or account.id is None or placeholder is None or has_address is not None:
        return contact
    conversation.contact_id, conversation.channel_account_id = contact.id or 0, account.id
    if placeholder.display_name and not contact.display_name:
        contact.display_name, contact.name_origin = placeholder.display_name, placeholder.name_origin
        session.add(contact)
    session.add(conversation)
    session.flush()
    session.delete(placeholder)
    session.flush()
    return contact


def ask_for_code(session: Session, *, proof: Proof, municipality: Municipality, conversation_id: int, phone: str,
                 language: str, client_ip: str | None) -> verification.Started:  # fmt: skip
    """Sends the code by SMS; the case rides in the verification and follows the number once the code is right."""
    return verification.start_verification(
        session, municipality=municipality, phone=phone, language=language, client_ip=client_ip,
        purpose=proof.phone_purpose, details={"conversation_id": conversation_id},
    )  # fmt: skip


def _phone_proven(
    session: Session, municipality: Municipality, proof: PhoneVerification, evidence: dict[str, Any]
) -> verification.Verified:
    assert municipality.id is not None
    contact = follow_as(
        session, municipality_id=municipality.id, conversation_id=int(proof.request["conversation_id"]), kind="phone",
        address=proof.phone, language=str(proof.request.get("language", "de")),
    )  # fmt: skip
    assert contact.id is not None
    return verification.Verified(contact_id=contact.id, change=None)


def check_code(session: Session, *, proof: Proof, municipality: Municipality, phone: str, code: str, language: str,
               client_ip: str | None, user_agent: str | None) -> None:  # fmt: skip
    """Checks the code (its tries and limits are the verification's); right, the case follows the number. Commits."""
    verification.verify_code(
        session, municipality=municipality, phone=phone, code=code, client_ip=client_ip, user_agent=user_agent,
        language=language, purpose=proof.phone_purpose,
    )  # fmt: skip
    session.commit()


def mail_link(session: Session, *, proof: Proof, settings: Settings, municipality: Municipality,
              conversation: Conversation, email: str, language: str, client_ip: str | None) -> str:  # fmt: skip
    """Mails the link that proves the address; following it, the case follows the address."""
    return email_opt_in.mail_signed_link(
        session, settings=settings, municipality=municipality, email=email, language=language, client_ip=client_ip,
        purpose=proof.email_purpose, payload={"c": conversation.id, "r": conversation.reference},
        path=f"/{municipality.slug}{proof.confirm_path}", template=proof.mail_template,
        context={"reference": conversation.reference},
    )  # fmt: skip


def send_proof(session: Session, *, proof: Proof, settings: Settings, municipality: Municipality,
               conversation: Conversation, follow: Follow, language: str,
               client_ip: str | None) -> dict[str, str]:  # fmt: skip
    """Sends the proof of the way chosen (a code by SMS, a link by mail); returns what the next page shows of it."""
    if follow.way == "phone":
        started = ask_for_code(
            session, proof=proof, municipality=municipality, conversation_id=conversation.id or 0, phone=follow.phone,
            language=language, client_ip=client_ip,
        )  # fmt: skip
        return {"p": started.phone}
    if follow.way == "email":
        return {"e": mail_link(
            session, proof=proof, settings=settings, municipality=municipality, conversation=conversation,
            email=follow.email, language=language, client_ip=client_ip,
        )}  # fmt: skip
    return {}


def read_mail_link(*, proof: Proof, municipality: Municipality, token: str) -> dict[str, Any]:
    """The case, address and language a mailed link carries, if it is genuine and for this town."""
    return email_opt_in.check_email_confirmation(municipality=municipality, token=token, purpose=proof.email_purpose)


def confirm_mail_link(session: Session, *, proof: Proof, municipality: Municipality, token: str) -> str:
    """Follows the mailed link: the case follows the address. Returns the case's reference. Commits."""
    assert municipality.id is not None
    payload = read_mail_link(proof=proof, municipality=municipality, token=token)
    follow_as(
        session, municipality_id=municipality.id, conversation_id=int(payload["c"]), kind="email",
        address=str(payload["e"]), language=str(payload.get("l", "de")),
    )  # fmt: skip
    session.commit()
    return str(payload["r"])
