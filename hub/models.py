"""Imports every table so that SQLModel.metadata (Alembic, tests) sees the whole schema."""

from hub.audit.models import AuditEvent
from hub.broadcasts.models import Broadcast, Delivery, SurveyAnswer
from hub.consultations.models import (
    Booking,
    BookingReminder,
    ConsultationOffer,
    ConsultationSeries,
    ConsultationSession,
    ConsultationSlot,
    Feedback,
    FeedbackRequest,
)
from hub.contacts.models import Contact, ContactIdentity
from hub.inbox.models import Attachment, Conversation, InboundEvent, Message, ReferenceCounter
from hub.official_warnings.models import OfficialWarning, WarningRelay
from hub.open311.models import Open311Client
from hub.problems.models import DistrictShape, ProblemCategory, ProblemPhoto, ProblemReport
from hub.subscribers.models import (
    ConsentEvent,
    District,
    PhoneVerification,
    Subscription,
    SubscriptionDistrict,
    SubscriptionTopic,
    Topic,
)
from hub.tenancy.models import ApiToken, ChannelAccount, Municipality, StaffUser, Team

__all__ = [
    "ApiToken",
    "Attachment",
    "AuditEvent",
    "Booking",
    "BookingReminder",
    "Broadcast",
    "ChannelAccount",
    "ConsentEvent",
    "ConsultationOffer",
    "ConsultationSeries",
    "ConsultationSession",
    "ConsultationSlot",
    "Contact",
    "ContactIdentity",
    "Conversation",
    "Delivery",
    "District",
    "DistrictShape",
    "Feedback",
    "FeedbackRequest",
    "InboundEvent",
    "Message",
    "Municipality",
    "OfficialWarning",
    "Open311Client",
    "PhoneVerification",
    "ProblemCategory",
    "ProblemPhoto",
    "ProblemReport",
    "ReferenceCounter",
    "StaffUser",
    "Subscription",
    "SubscriptionDistrict",
    "SubscriptionTopic",
    "SurveyAnswer",
    "Team",
    "Topic",
    "WarningRelay",
]
