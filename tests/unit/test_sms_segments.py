"""What an SMS costs: segment counts and encodings at the GSM-7 and UCS-2 boundaries."""

from __future__ import annotations

import pytest

from channels.sms_segments import sms_segments


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (160, 1), (161, 2), (153 * 2, 2), (153 * 2 + 1, 3), (153 * 10, 10)],
)
def test_gsm7_segment_boundaries(length: int, segments: int) -> None:
    assert sms_segments("a" * length) == (segments, "GSM-7")


def test_empty_text_is_billed_as_one_segment() -> None:
    assert sms_segments("") == (1, "GSM-7")


def test_german_umlauts_and_eszett_stay_gsm7() -> None:
    assert sms_segments("Grüße aus der Straße") == (1, "GSM-7")
    assert sms_segments("ÄÖÜäöüß") == (1, "GSM-7")


def test_euro_sign_keeps_gsm7_but_costs_two_septets() -> None:
    assert sms_segments("a" * 158 + "€") == (1, "GSM-7")
    assert sms_segments("a" * 159 + "€") == (2, "GSM-7")


def test_extension_pair_is_not_split_between_parts() -> None:
    # 152 septets then a two-septet [: the pair moves whole into the second part, so
    # 306 septets, which would fill two parts exactly, need three.
    assert sms_segments("a" * 152 + "[" + "a" * 151) == (2, "GSM-7")
    assert sms_segments("a" * 152 + "[" + "a" * 152) == (3, "GSM-7")


def test_german_low_quote_forces_ucs2() -> None:
    assert sms_segments("„Hallo“") == (1, "UCS-2")
    assert sms_segments("„" + "a" * 70) == (2, "UCS-2")


@pytest.mark.parametrize(
    ("length", "segments"),
    [(70, 1), (71, 2), (67 * 2, 2), (67 * 2 + 1, 3)],
)
def test_ucs2_segment_boundaries(length: int, segments: int) -> None:
    assert sms_segments("Ж" * length) == (segments, "UCS-2")


def test_emoji_counts_two_utf16_units() -> None:
    assert sms_segments("😀" * 35) == (1, "UCS-2")
    assert sms_segments("😀" * 35 + "a") == (2, "UCS-2")


def test_emoji_surrogate_pair_is_not_split_between_parts() -> None:
    # 66 units then a two-unit emoji: it cannot straddle the 67-unit boundary, so
    # 134 units, which would fill two parts exactly, need three.
    assert sms_segments("Ж" * 66 + "😀" + "Ж" * 65) == (2, "UCS-2")
    assert sms_segments("Ж" * 66 + "😀" + "Ж" * 66) == (3, "UCS-2")
