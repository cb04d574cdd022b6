"""What staff read instead of system words: severity names, targets in hours and working days, template errors."""

from __future__ import annotations

import pytest
from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment
from sqlmodel import Session

from hub.broadcasts import rendering
from hub.broadcasts import service as broadcasts
from hub.broadcasts.models import Broadcast
from hub.errors import InvalidInput, Term, template_error
from hub.i18n import N_
from hub.tenancy import administration as admin
from hub.tenancy.office_hours import target_in_units
from hub.web.rendering import format_target
from tests.unit.db import make_town
from tests.unit.web import staff_user


def problem(source: str, **variables: str) -> InvalidInput:
    """The error a staff-written text gives when it is filled with `variables`."""
    environment = SandboxedEnvironment(undefined=StrictUndefined)
    with pytest.raises(TemplateError) as raised:
        environment.from_string(source).render(**variables)
    return template_error(raised.value, what=Term(N_("Textbaustein")), known=variables)


def test_a_text_that_does_not_fill_says_in_german_what_and_where() -> None:
    typo = problem("Guten Tag,\nIhre Nummer ist {{ referenz }}.", reference="A-1", name="Erika")
    assert str(typo) == (
        "Textbaustein, Zeile 2: den Platzhalter „referenz“ gibt es nicht. Möglich sind: name, reference."
    )
    assert typo.text("en") == "Canned reply, line 2: there is no placeholder “referenz”. Possible are: name, reference."
    assert str(problem("a\nb\n{{ name }")).startswith("Textbaustein, Zeile 3: eine Klammer ist nicht richtig")
    assert "Platzhalter stehen in {{ … }}" in str(problem("{{ name }"))
    assert str(problem("x\n{% iff name %}")) == "Textbaustein, Zeile 2: den Befehl „iff“ gibt es nicht."
    assert "{% endif %}" in str(problem("{% if name %}ja", name="E"))
    assert "Klammer" in str(problem("Hallo {{ name", name="E"))
    assert str(problem("{{ name | gross }}", name="E")) == "Textbaustein, Zeile 1: den Filter „gross“ gibt es nicht."
    assert "nicht erlaubt" in str(problem("{{ name.__class__ }}", name="E"))
    # No English from the template engine reaches the reader.
    for error in (problem("{{ nmae }}"), problem("{% for %}"), problem("{{ name.upper.x }}", name="E")):
        assert "undefined" not in str(error) and "unexpected" not in str(error).lower()


def test_a_broadcast_text_names_its_language_and_line() -> None:
    broadcast = Broadcast(
        municipality_id=1, kind="announcement", title="Fest",
        texts={"de": {"body": "Hallo {{ name }}"}, "en": {"body": "Hello,\n{{ first_name }}"}},
    )  # fmt: skip
    with pytest.raises(InvalidInput) as refused:
        rendering.render(broadcast, kind="twilio", language="en", recipient={"name": "Erika", "district": ""})
    assert str(refused.value).startswith("Text (en), Zeile 2: den Platzhalter „first_name“ gibt es nicht.")
    assert "district, name, salutation" in str(refused.value)


def test_a_warning_without_a_level_names_the_levels_in_german(session: Session) -> None:
    town = make_town(session)
    draft = broadcasts.Draft(kind="warning", title="Sturm", texts={"de": {"body": "Sturm"}})
    with pytest.raises(InvalidInput) as refused:
        broadcasts.create(session, author=staff_user(session, town, "mayor"), draft=draft)
    assert str(refused.value) == "Eine Warnung braucht eine Stufe: Extrem, Schwer, Mäßig, Gering."
    assert refused.value.text("en") == "A warning needs a level: Extreme, Severe, Moderate, Minor."


def test_targets_are_set_in_hours_and_working_days_and_stored_in_minutes() -> None:
    assert admin.parse_target("4", "hours", N_("Erste Antwort")) == 240
    assert admin.parse_target("1,5", "hours", N_("Erste Antwort")) == 90
    assert admin.parse_target("5", "working_days", N_("Erledigung")) == 2400
    assert admin.parse_target(" ", "hours", N_("Erledigung")) is None
    for amount, unit in (("0", "hours"), ("bald", "hours"), ("-2", "hours"), ("2", "weeks"), ("251", "working_days")):
        with pytest.raises(InvalidInput):
            admin.parse_target(amount, unit, N_("Erledigung"))
    assert target_in_units(2400) == ("5", "working_days")
    assert target_in_units(90) == ("1,5", "hours")
    assert target_in_units(None) == ("", "hours")
    assert [format_target(minutes) for minutes in (480, 2400, 240, 90, 35, None)] == [
        "1 Arbeitstag", "5 Arbeitstage", "4 Std.", "1 Std. 30 Min.", "35 Min.", "–",
    ]  # fmt: skip
    assert format_target(2400, "en") == "5 working days"


def test_a_settings_text_that_does_not_fill_is_refused_with_its_place(session: Session) -> None:
    town = make_town(session)
    with pytest.raises(InvalidInput) as refused:
        admin.save_municipality_settings(
            session, municipality_id=town.id, actor_id=0, office_hours={}, first_response_minutes=None,
            resolution_minutes=None, retention_days=None, code_limits=admin.parse_code_limits({}),
            texts={"de": {"acknowledgement.txt.j2": "Danke!\nIhre Nummer: {{ nummer }}"}},
        )  # fmt: skip
    assert str(refused.value).startswith(
        "Eingangsbestätigung (de), Zeile 2: den Platzhalter „nummer“ gibt es nicht. Möglich sind: link, municipality,"
    )
    # What the settings page shows of the hub's own wording is filled in, without template syntax.
    shown = admin.builtin_examples("Gemeinde Testdorf")
    assert all("{{" not in text and "{%" not in text for texts in shown.values() for text in texts.values())
    assert "Gemeinde Testdorf" in shown["de"]["acknowledgement.txt.j2"]
