"""One-time codes for the web form: hashing, expiry, tries, resends, limits per number and IP, allowed countries."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest
from sqlmodel import Session, select

from channels.base import PermanentError, TransientError
from hub.audit.models import AuditEvent
from hub.db import utcnow
from hub.delivery import engine
from hub.errors import ChannelUnavailable, InvalidInput, TooManyRequests
from hub.subscribers import verification
from hub.subscribers.models import ConsentEvent, PhoneVerification, Subscription
from tests.unit.db import FakeAdapter, Town, make_town
from tests.unit.web import staff_user

PHONE = "+4915112345678"


@pytest.fixture
def town(session: Session) -> Town:
    return make_town(session)


@pytest.fixture
def sms(monkeypatch: pytest.MonkeyPatch) -> FakeAdapter:
    adapter = FakeAdapter()
    monkeypatch.setattr(engine, "build_adapter", adapter)
    return adapter


def start(session: Session, town: Town, phone: str = PHONE, *, now: datetime, ip: str = "192.0.2.1", **kw: object):  # type: ignore[no-untyped-def]
    return verification.start_verification(
        session,
        municipality=town.municipality,
        phone=phone,
        topics=kw.get("topics", ["abfall"]),  # type: ignore[arg-type]
        district=kw.get("district", "nord"),  # type: ignore[arg-type]
        language=kw.get("language", "de"),  # type: ignore[arg-type]
        client_ip=ip,
        now=now,
    )


def verify(session: Session, town: Town, code: str, *, now: datetime, phone: str = PHONE) -> verification.Verified:
    return verification.verify_code(
        session,
        municipality=town.municipality,
        phone=phone,
        code=code,
        client_ip="192.0.2.1",
        user_agent="Firefox",
        now=now,
    )


def code_in(text: str) -> str:
    found = re.search(r"\b(\d{6})\b", text)
    assert found, text
    return found.group(1)


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_codes_are_stored_only_as_salted_keyed_hashes() -> None:
    first, second = verification.hash_code("123456"), verification.hash_code("123456")
    assert first != second and "123456" not in first
    assert verification.code_matches("123456", first) and verification.code_matches("123456", second)
    assert not verification.code_matches("123457", first)
    assert all(len(verification.new_code()) == 6 for _ in range(50))


def test_a_right_code_subscribes_the_number_with_the_form_evidence(
    session: Session, town: Town, sms: FakeAdapter
) -> None:
    now = utcnow()
    started = start(session, town, "0151 12345678", now=now)
    assert started.phone == PHONE
    [sent] = sms.sent
    assert sent.to == PHONE and "Gemeinde Testdorf" in sent.text and "10 Minuten" in sent.text
    row = session.exec(select(PhoneVerification)).one()
    assert code_in(sent.text) not in row.code_hash and row.client_ip == "192.0.2.1"

    verified = verify(session, town, code_in(sent.text), now=now + timedelta(minutes=9))
    session.commit()
    assert verified.change.subscription.state == "active"
    [event] = session.exec(select(ConsentEvent)).all()
    assert (event.action, event.source) == ("subscribed", "form")
    assert event.evidence["ip"] == "192.0.2.1" and event.evidence["user_agent"] == "Firefox"
    assert event.evidence["verification_id"] == row.id
    # A used code cannot be used again.
    with pytest.raises(InvalidInput, match="keinen gültigen Code"):
        verify(session, town, code_in(sent.text), now=now + timedelta(minutes=9))


def test_an_expired_code_is_refused(session: Session, town: Town, sms: FakeAdapter) -> None:
    now = utcnow()
    start(session, town, now=now)
    with pytest.raises(InvalidInput, match="abgelaufen"):
        verify(session, town, code_in(sms.sent[0].text), now=now + timedelta(minutes=10, seconds=1))
    assert session.exec(select(Subscription)).all() == []


def test_five_tries_then_the_code_is_dead_even_the_right_one(session: Session, town: Town, sms: FakeAdapter) -> None:
    now = utcnow()
    start(session, town, now=now)
    code = code_in(sms.sent[0].text)
    for left in (4, 3, 2, 1):
        with pytest.raises(InvalidInput, match=f"noch {left} Versuch"):
            verify(session, town, wrong(code), now=now)
    with pytest.raises(TooManyRequests, match="zu oft falsch"):
        verify(session, town, wrong(code), now=now)
    with pytest.raises(TooManyRequests, match="zu oft falsch"):
        verify(session, town, code, now=now)
    assert session.exec(select(PhoneVerification)).one().attempts == 5
    with pytest.raises(InvalidInput, match="6 Ziffern"):
        verify(session, town, "12a", now=now)


def test_resend_waits_60_seconds_and_stops_after_three_sends(session: Session, town: Town, sms: FakeAdapter) -> None:
    now = utcnow()
    start(session, town, now=now)
    with pytest.raises(TooManyRequests, match="warten Sie noch 31 Sekunden"):
        start(session, town, now=now + timedelta(seconds=30))
    start(session, town, now=now + timedelta(seconds=61))
    start(session, town, now=now + timedelta(seconds=122))
    with pytest.raises(TooManyRequests, match="schon 3 Codes"):
        start(session, town, now=now + timedelta(seconds=183))
    assert len(sms.sent) == 3 and len(session.exec(select(PhoneVerification)).all()) == 1
    # Only the newest code works.
    with pytest.raises(InvalidInput, match="stimmt nicht"):
        verify(session, town, code_in(sms.sent[0].text), now=now + timedelta(seconds=190))
    verify(session, town, code_in(sms.sent[-1].text), now=now + timedelta(seconds=190))


def test_at_most_five_codes_per_number_and_twenty_per_ip_an_hour(
    session: Session, town: Town, sms: FakeAdapter
) -> None:
    now = utcnow()
    # Each verification expires after 10 minutes, so a new one starts every 11.
    for i in range(5):
        start(session, town, now=now + timedelta(minutes=11 * i))
    with pytest.raises(TooManyRequests, match="diese Nummer"):
        start(session, town, now=now + timedelta(minutes=56))
    start(session, town, now=now + timedelta(minutes=11 * 4 + 61))

    later = now + timedelta(hours=3)
    for i in range(20):
        start(session, town, f"+491511000{i:04d}", now=later, ip="198.51.100.7")
    with pytest.raises(TooManyRequests, match="Ihrem Anschluss"):
        start(session, town, "+4915119999999", now=later, ip="198.51.100.7")
    start(session, town, "+4915119999999", now=later, ip="198.51.100.8")


def test_numbers_from_countries_not_allowed_get_no_code(session: Session, town: Town, sms: FakeAdapter) -> None:
    now = utcnow()
    with pytest.raises(InvalidInput, match="Ländern schicken: DE"):
        start(session, town, "+12025550123", now=now)
    with pytest.raises(InvalidInput, match="only send codes"):
        start(session, town, "+447911123456", now=now, language="en")
    with pytest.raises(InvalidInput, match="keine gültige Telefonnummer"):
        start(session, town, "12345", now=now)
    town.municipality.preferences = {"allowed_phone_countries": ["DE", "AT"]}
    session.add(town.municipality)
    session.commit()
    start(session, town, "+436641234567", now=now)
    assert [m.to for m in sms.sent] == ["+436641234567"]


def test_unknown_topics_are_refused_before_anything_is_sent(session: Session, town: Town, sms: FakeAdapter) -> None:
    with pytest.raises(InvalidInput, match="Unbekannte Themen: sperrmuell"):
        start(session, town, now=utcnow(), topics=["sperrmuell"])
    assert sms.sent == [] and session.exec(select(PhoneVerification)).all() == []


def test_a_failed_send_is_taken_back_so_the_citizen_can_retry_at_once(
    session: Session, town: Town, sms: FakeAdapter
) -> None:
    now = utcnow()
    sms.fail_with = TransientError("Twilio 503")
    with pytest.raises(ChannelUnavailable, match="gleich noch einmal") as error:
        start(session, town, now=now)
    assert error.value.status_code == 503
    assert session.exec(select(PhoneVerification)).all() == []
    sms.fail_with = PermanentError("21614 not a mobile number")
    with pytest.raises(InvalidInput, match="keine Nachricht gesendet"):
        start(session, town, now=now)
    sms.fail_with = None
    start(session, town, now=now)
    assert len(sms.sent) == 1


def test_the_town_stops_at_its_hourly_and_daily_ceiling_and_tells_its_administrators_once(
    session: Session, town: Town, sms: FakeAdapter
) -> None:
    town.municipality.preferences = {"verification_codes_per_hour": 3, "verification_codes_per_day": 5}
    session.add(town.municipality)
    administrator = staff_user(session, town, "admin")
    clerk = staff_user(session, town, "staff")
    now = utcnow()
    numbers = (f"+4915110000{n:03d}" for n in range(100))
    # Every code to another number from another client: no per-number or per-client limit applies.
    for i in range(3):
        start(session, town, next(numbers), now=now, ip=f"198.51.100.{i}")
    for i in range(2):
        with pytest.raises(TooManyRequests, match="keine Codes senden"):
            start(session, town, next(numbers), now=now + timedelta(minutes=5 + i), ip=f"203.0.113.{i}")

    hourly = [sent for sent in sms.sent if sent.to == administrator.email]
    assert len(hourly) == 1, "the administrator is told once, not at every refused code"
    assert "3 Bestätigungscodes" in (hourly[0].text or "") and "in der letzten Stunde" in (hourly[0].text or "")
    assert all(sent.to != clerk.email for sent in sms.sent)

    later = now + timedelta(minutes=61)
    for i in range(2):
        start(session, town, next(numbers), now=later, ip=f"192.0.2.{i + 10}")
    with pytest.raises(TooManyRequests, match="keine Codes senden"):
        start(session, town, next(numbers), now=later, ip="192.0.2.99")
    daily = [sent for sent in sms.sent if sent.to == administrator.email][1:]
    assert len(daily) == 1 and "in den letzten 24 Stunden" in (daily[0].text or "")
    codes_sent = [sent for sent in sms.sent if sent.to.startswith("+49")]
    assert len(codes_sent) == 5
    actions = session.exec(select(AuditEvent.action).where(AuditEvent.action.startswith("verification."))).all()  # type: ignore[attr-defined]
    assert sorted(actions) == ["verification.day_ceiling_reached", "verification.hour_ceiling_reached"]
