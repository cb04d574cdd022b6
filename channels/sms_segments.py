"""Counts the SMS segments a text costs and whether it travels as GSM-7 or UCS-2."""

from __future__ import annotations

from typing import Literal

SmsEncoding = Literal["GSM-7", "UCS-2"]

# GSM 03.38 basic character set (the escape character 0x1B itself is left out: it is not text).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# Extension table: each of these is sent as escape + character, so it costs two septets.
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

GSM7_SINGLE_SEPTETS = 160
GSM7_PART_SEPTETS = 153
UCS2_SINGLE_UNITS = 70
UCS2_PART_UNITS = 67


def sms_segments(text: str) -> tuple[int, SmsEncoding]:
    """Return how many SMS segments `text` needs and the encoding it is sent in.

    GSM-7 is used when every character is in the GSM 03.38 basic or extension table
    (extension characters such as € [ ] { } cost two septets); anything else forces UCS-2,
    which counts UTF-16 code units, so an emoji costs two. A single message holds 160 septets
    or 70 units; concatenated parts hold 153 or 67 because the user data header takes the rest.
    An escape pair or a surrogate pair is never split between parts, so a part may end short.
    Empty text counts as one GSM-7 segment, because the provider still bills one message.
    """
    if all(char in GSM7_BASIC or char in GSM7_EXTENSION for char in text):
        costs = [2 if char in GSM7_EXTENSION else 1 for char in text]
        return _count_parts(costs, GSM7_SINGLE_SEPTETS, GSM7_PART_SEPTETS), "GSM-7"
    costs = [2 if ord(char) > 0xFFFF else 1 for char in text]
    return _count_parts(costs, UCS2_SINGLE_UNITS, UCS2_PART_UNITS), "UCS-2"


def _count_parts(costs: list[int], single_capacity: int, part_capacity: int) -> int:
    if sum(costs) <= single_capacity:
        return 1
    parts, used = 1, 0
    for cost in costs:
        if used + cost > part_capacity:
            parts, used = parts + 1, 0
        used += cost
    return parts
