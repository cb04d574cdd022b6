"""Wires the domains together at start: pipeline steps, delivery reports, personal data, pages, announcements.

The lower layers offer register functions so that they never import the domains above them;
this is the one place that calls them. hub.app.create_app, the CLI and the Celery worker call
`install()` (tests too, from tests/conftest.py); calling it again changes nothing.
"""

from __future__ import annotations

from hub.broadcasts import fanout, invitations, sending, surveys
from hub.broadcasts import gdpr as broadcasts_gdpr
from hub.broadcasts import service as broadcasts
from hub.broadcasts.models import Delivery
from hub.consultations import commands as consultation_commands
from hub.consultations import concerns, feedback, recording
from hub.consultations import gdpr as consultations_gdpr
from hub.consultations import sessions as consultation_sessions
from hub.contacts.registry import (
    CONTACT_CONTEXT,
    CONVERSATION_PANEL,
    SUBSCRIBER_PAGE,
    register_personal_data,
    register_record,
)
from hub.inbox import bulk, history, pipeline, reach, sla
from hub.inbox import gdpr as inbox_gdpr
from hub.inbox.public_status import register_status_section
from hub.problems import gdpr as problems_gdpr
from hub.problems import intake as problem_intake
from hub.problems import listing as problem_listing
from hub.problems import service as problems
from hub.problems import staff_pages as problem_pages
from hub.subscribers import commands, listing, opt_in
from hub.subscribers import gdpr as subscribers_gdpr


def install() -> None:
    # The opt-in first, as a first "ANMELDEN" is one. Subscriber commands before survey answers:
    # "STOP" is never a vote. Consultation commands between them: STOP still stops, and a digit
    # answering an open offer of slots is not a vote. A digit answering a feedback request before the
    # consultation commands: it yields to an offer made since, and is never threaded into a case.
    # A calendar's answer to an invitation is an RSVP whatever its words say, so it comes before them all.
    pipeline.register_step(invitations.record_calendar_reply)
    pipeline.register_step(opt_in.record_opt_in)
    pipeline.register_step(commands.apply_subscriber_commands)
    pipeline.register_step(feedback.record_feedback_reply)
    pipeline.register_step(consultation_commands.apply_consultation_commands)
    pipeline.register_step(surveys.record_survey_answer)
    # What a citizen holding a booking writes, on any of their channels, reaches the booking's case.
    pipeline.register_case_finder(concerns.thread_into_booking)
    # Once a message is in its case: a report's place, photos and category.
    pipeline.register_case_step(problem_intake.record_problem_report)
    pipeline.register_opt_out(commands.stop_after_opt_out)
    # A report's and a booking's conversation stay as they are: reports merge as reports, bookings keep their case.
    bulk.register_merge_hold(problems.conversations_with_reports, reason=problems.KEPT_BY_REPORT)
    bulk.register_merge_hold(concerns.conversations_with_bookings, reason=concerns.KEPT_BY_BOOKING)
    # A delivery's states have no "undelivered": a broadcast message the provider could not deliver
    # failed, and goes to the citizen's next channel where the broadcast falls back.
    pipeline.register_report_target(
        pipeline.report_target(Delivery, "state", undelivered="failed", on_failure=sending.fall_back_after_report)
    )
    # A sender's daily limit of recipients counts the broadcasts as well as reminders and the like.
    reach.register_reach_counter(fanout.contacts_reached)
    # The order of the export document's sections.
    for part in (
        subscribers_gdpr.PERSONAL_DATA,
        inbox_gdpr.PERSONAL_DATA,
        broadcasts_gdpr.PERSONAL_DATA,
        consultations_gdpr.PERSONAL_DATA,
        consultation_commands.OFFERS_DATA,
        feedback.PERSONAL_DATA,
        problems_gdpr.PERSONAL_DATA,
    ):
        register_personal_data(part)
    register_record(CONVERSATION_PANEL, "subscribers", listing.contact_panel)
    register_record(CONVERSATION_PANEL, "consultations", consultation_sessions.contact_panel)
    register_record(CONVERSATION_PANEL, "problems", problem_pages.contact_panel)
    register_record(SUBSCRIBER_PAGE, "broadcasts", surveys.answers_of_contact)
    register_record(CONTACT_CONTEXT, "inbox", history.contact_context)
    register_record(CONTACT_CONTEXT, "subscribers", listing.contact_context)
    register_record(CONTACT_CONTEXT, "consultations", consultation_sessions.contact_context)
    register_status_section(problem_listing.status_section)
    # A problem report is answered within its category's target, whichever team takes it.
    sla.register_own_targets(problems.response_targets)
    recording.register_announcer(broadcasts.announce, withdrawn=broadcasts.withdrawn)
