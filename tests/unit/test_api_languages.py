"""The JSON API refuses in the language of Accept-Language, German by default, with texts from the catalogues."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session

from tests.unit.db import make_town
from tests.unit.web import api_client

ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}


@pytest.fixture
def api(session: Session) -> TestClient:
    return api_client(session, make_town(session, slug="sprachdorf"))


def draft(**changes: object) -> dict[str, object]:
    return {"kind": "announcement", "title": "Straßenfest", "texts": {"de": {"body": "Am Samstag."}}, **changes}


def detail(answer: httpx.Response, status: int) -> str:
    assert answer.status_code == status, answer.text
    return str(answer.json()["detail"])


def test_a_domain_error_is_german_without_the_header_and_english_with_it(api: TestClient) -> None:
    assert detail(api.get("/api/v1/broadcasts/987654"), 404) == "Nachricht 987654 nicht gefunden."
    assert detail(api.get("/api/v1/broadcasts/987654", headers=ENGLISH), 404) == "Message 987654 not found."
    # A language the hub does not speak gets German.
    assert detail(api.get("/api/v1/broadcasts/987654", headers={"Accept-Language": "fr"}), 404) == (
        "Nachricht 987654 nicht gefunden."
    )


def test_values_are_filled_into_either_language(api: TestClient) -> None:
    german = detail(api.post("/api/v1/broadcasts", json=draft(channels=["fax"])), 422)
    assert german.startswith("Unbekannter Kanaltyp 'fax'; bekannt: ") and "telegram" in german
    english = detail(api.post("/api/v1/broadcasts", json=draft(channels=["fax"]), headers=ENGLISH), 422)
    assert english.startswith("Unknown channel type 'fax'; known: ") and "telegram" in english


def test_the_validation_answer_keeps_its_shape_in_readable_german_or_english(api: TestClient) -> None:
    body = {"kind": "notice", "texts": {"de": {"body": "x"}}}
    german = detail(api.post("/api/v1/broadcasts", json=body), 422)
    assert german.startswith("Ungültige Anfrage: ")
    assert "body.kind: Erlaubt: " in german and "body.title: Angabe fehlt." in german
    english = detail(api.post("/api/v1/broadcasts", json=body, headers=ENGLISH), 422)
    assert english.startswith("Invalid request: ")
    assert "body.kind: Input should be " in english and "body.title: Field required." in english
    # The hub's own field messages (a time without a zone) are catalogue texts too.
    naive = draft(send_at="2030-06-01T09:30:00")
    assert "ohne Zeitzone" in detail(api.post("/api/v1/broadcasts", json=naive), 422)
    assert "without a time zone" in detail(api.post("/api/v1/broadcasts", json=naive, headers=ENGLISH), 422)


# Each public sign-up with a refused address: (form, the refusal in English, in German).
SIGN_UPS = {
    "phone": (
        {"phone": "12"},
        "That is not a valid phone number. Please check it.",
        "Das ist keine gültige Telefonnummer. Bitte prüfen Sie die Eingabe.",
    ),
    "email": (
        {"email": "erika.example.org"},
        "'erika.example.org' is not a valid email address.",
        "'erika.example.org' ist keine gültige E-Mail-Adresse.",
    ),
}


@pytest.mark.parametrize("way", SIGN_UPS)
def test_a_citizen_who_chose_a_language_is_answered_in_it(api: TestClient, way: str) -> None:
    signup = f"/api/v1/public/sprachdorf/subscriptions/{way}"
    form, in_english, in_german = SIGN_UPS[way]
    english = detail(api.post(signup, json={**form, "language": "en"}), 422)
    assert english == in_english
    # The language in the form wins over the browser's: the citizen picked it.
    german = detail(api.post(signup, json={**form, "language": "de"}, headers=ENGLISH), 422)
    assert german == in_german


def test_the_subscribers_api_refuses_in_either_language(api: TestClient) -> None:
    assert detail(api.get("/api/v1/subscribers", params={"state": "weg"}), 422) == (
        "Unbekannter Zustand 'weg'; erlaubt: pending, active, stopped."
    )
    assert detail(api.get("/api/v1/subscribers", params={"state": "weg"}, headers=ENGLISH), 422) == (
        "Unknown state 'weg'; allowed: pending, active, stopped."
    )
    german = detail(api.get("/api/v1/subscribers", params={"topic": "kirmes"}), 422)
    assert german.startswith("Unbekannte Themen: kirmes. Es gibt: ") and "abfall" in german
    english = detail(api.get("/api/v1/subscribers", params={"topic": "kirmes"}, headers=ENGLISH), 422)
    assert english.startswith("Unknown topics: kirmes. There are: ") and "abfall" in english
    assert detail(api.get("/api/v1/subscribers/987654"), 404) == "Kontakt 987654 hat kein Abonnement."
    assert detail(api.get("/api/v1/subscribers/987654", headers=ENGLISH), 404) == "Contact 987654 has no subscription."


def test_a_citizens_broken_confirmation_link_is_refused_in_either_language(api: TestClient) -> None:
    confirm = "/api/v1/public/sprachdorf/subscriptions/email/confirm?token=kaputt"
    json = {"Accept": "application/json"}
    assert detail(api.post(confirm, headers=json), 422) == (
        "Der Bestätigungslink ist ungültig. Bitte melden Sie sich noch einmal an."
    )
    assert detail(api.post(confirm, headers={**json, **ENGLISH}), 422) == (
        "The confirmation link is not valid. Please sign up again."
    )


def test_a_request_without_a_valid_token_is_refused_in_either_language(api: TestClient) -> None:
    del api.headers["Authorization"]
    assert detail(api.get("/api/v1/subscribers"), 401).startswith("Anmeldung erforderlich: ")
    assert detail(api.get("/api/v1/subscribers", headers=ENGLISH), 401).startswith("Sign-in required: ")
    wrong = {"Authorization": "Bearer falsch"}
    assert detail(api.get("/api/v1/subscribers", headers=wrong), 401) == "Token ungültig oder widerrufen."
    assert detail(api.get("/api/v1/subscribers", headers={**wrong, **ENGLISH}), 401) == "Token invalid or revoked."


def test_a_webhook_for_no_channel_is_refused_in_either_language(api: TestClient) -> None:
    assert detail(api.post("/webhooks/twilio/987654", content=b"x"), 404) == "Kanal 987654 ist nicht eingerichtet."
    assert detail(api.post("/webhooks/twilio/987654", content=b"x", headers=ENGLISH), 404) == (
        "Channel 987654 is not set up."
    )
