"""The town's record of processing activities (DSGVO Art. 30), made from its actual configuration."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from channels.base import Processor
from channels.registry import adapter_class
from hub.db import utcnow
from hub.tenancy.models import Municipality
from hub.tenancy.preferences import preference
from hub.tenancy.service import list_channel_accounts


@dataclass(frozen=True)
class ChannelEntry:
    name: str
    label: str
    address: str
    processor: Processor | None


@dataclass(frozen=True)
class ProcessingRecord:
    town: str
    contact: str | None
    channels: list[ChannelEntry]
    retention_days: int | None
    made_at: datetime


def processing_record(session: Session, *, municipality: Municipality) -> ProcessingRecord:
    """The record as the town is set up now: its active channels with their processors, and its retention."""
    assert municipality.id is not None
    accounts = [
        account for account in list_channel_accounts(session, municipality_id=municipality.id) if account.active
    ]
    channels = [
        ChannelEntry(account.name, adapter_class(account.kind).label, account.address,
                     adapter_class(account.kind).processor)
        for account in accounts
    ]  # fmt: skip
    contact = preference(municipality, "accessibility_contact").get("email") or next(
        (account.address for account in accounts if adapter_class(account.kind).identity.kind == "email"), None
    )
    return ProcessingRecord(
        town=municipality.name, contact=contact, channels=channels,
        retention_days=preference(municipality, "retention_days"), made_at=utcnow(),
    )  # fmt: skip
