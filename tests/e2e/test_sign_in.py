"""Signing in and out in a real browser, refused without the right role, and the pages accessible."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.conftest import DEMO_USERS, assert_accessible
from tests.running_hub import Hub

pytestmark = pytest.mark.parametrize("hub", ["embedded"], indirect=True)


def test_sign_in_page_is_accessible_and_a_wrong_password_is_refused(page: Page, hub: Hub) -> None:
    page.goto(f"{hub.url}/app/")
    expect(page).to_have_url(re.compile(r"/app/login\?next=%2Fapp%2F"))
    assert_accessible(page, "sign-in")
    page.get_by_label("E-Mail-Adresse").fill(DEMO_USERS["staff"])
    page.get_by_label("Passwort", exact=True).fill("falsch-falsch-falsch")
    page.get_by_role("button", name="Anmelden").click()
    expect(page.get_by_role("alert")).to_contain_text("E-Mail-Adresse oder Passwort stimmen nicht.")


def test_account_page_and_sign_out(signed_in: Callable[..., Page], hub: Hub) -> None:
    page = signed_in("staff", next_path="/app/account")
    expect(page.get_by_role("heading", name="Mein Konto")).to_be_visible()
    assert_accessible(page, "account")
    page.get_by_role("button", name=re.compile("Abmelden")).click()
    expect(page.get_by_role("status")).to_contain_text("Sie sind abgemeldet.")
    page.goto(f"{hub.url}/app/account")
    expect(page).to_have_url(re.compile(r"/app/login"))
