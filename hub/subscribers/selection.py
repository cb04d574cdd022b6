"""Recipient selection: which active subscriptions a broadcast's topics and districts reach."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from sqlalchemy import ColumnElement, Select, exists, func, or_
from sqlmodel import col, select

from hub.errors import InvalidInput
from hub.i18n import N_
from hub.subscribers.models import Subscription, SubscriptionDistrict, SubscriptionTopic

Match = Literal["any", "all"]


def subscriber_query(
    municipality_id: int,
    topic_ids: Sequence[int],
    topic_match: Match,
    district_ids: Sequence[int],
    district_match: Match,
) -> Select[tuple[int, str]]:
    """(contact_id, language) of every active subscription a broadcast with this targeting reaches.

    No topic (district) ids: no restriction. "any": the subscriber chose at least one of them;
    "all": every one of them. A subscriber who chose no topics hears about every topic, and
    one who chose no district hears about the whole municipality, so they match any targeting.
    One statement of EXISTS and counted subqueries, ordered by contact, for fan-out to page.
    """
    query: Select[tuple[int, str]] = select(  # type: ignore[assignment]
        col(Subscription.contact_id), col(Subscription.language)
    ).where(col(Subscription.municipality_id) == municipality_id, col(Subscription.state) == "active")
    if topic_ids:
        query = query.where(_matches(SubscriptionTopic, col(SubscriptionTopic.topic_id), topic_ids, topic_match))
    if district_ids:
        query = query.where(
            _matches(SubscriptionDistrict, col(SubscriptionDistrict.district_id), district_ids, district_match)
        )
    return query.order_by(col(Subscription.contact_id))


def _matches(
    link: type[SubscriptionTopic] | type[SubscriptionDistrict], column: Any, wanted: Sequence[int], match: Match
) -> ColumnElement[bool]:
    owner = col(link.subscription_id) == Subscription.id
    chose_none = ~exists().where(owner)
    ids = sorted(set(wanted))
    if match == "any":
        return or_(chose_none, exists().where(owner, column.in_(ids)))
    if match == "all":
        counted = select(func.count()).select_from(link).where(owner, column.in_(ids)).scalar_subquery()
        return or_(chose_none, counted == len(ids))
    raise InvalidInput(N_("Unbekannte Verknüpfung {match!r}; erlaubt: any, all."), match=match)
