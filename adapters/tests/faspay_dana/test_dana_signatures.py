"""Signatures: the reproducible examples of the protocol reference §3.4, and strict checks."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

import pytest

from gateway_core import Money, Payment, PaymentStatus
from gateway_faspay_dana import (
    FaspayDanaGateway,
    bill_signature,
    channel_inquiry_signature,
    matches,
    sign,
    status_signature,
)

PASSWORD = "p@ssw0rd"

# (§3.4 row, concatenated parts, documented signature)
KNOWN_ANSWERS = [
    ("1 channel inquiry JSON", ("bot98765", PASSWORD), "e73f632e99308e424cac281b5d28c4cfc150e85b"),
    ("2 channel inquiry XML", ("bot31019", PASSWORD), "18a157f7dd95df490f28d62e3ec7bf5bb9911be1"),
    (
        "3 DANA post data",
        ("bot99999", PASSWORD, "20201222023626"),
        "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7",
    ),
    (
        "4 post data",
        ("bot98765", PASSWORD, "98765123456789"),
        "5807a17ccd950904ec0a303725fa8a4b36c89e2f",
    ),
    (
        "5 ShopeePay post data",
        ("bot99999", PASSWORD, "20201222024626"),
        "676a826d180a0a6cad33ff58c09a2377893850ca",
    ),
    (
        "6 inquiry JSON",
        ("bot98765", PASSWORD, "9988776655"),
        "b03951a6051dfa90894eea48ccb964619e8b3474",
    ),
    (
        "7 inquiry XML",
        ("bot31004", PASSWORD, "31004001"),
        "be8791ac5f10bb042834896598bfc6bb9aadcbf9",
    ),
    ("8 cancel", ("bot99999", PASSWORD, "8226"), "6d16537c525b0e8450cdf5d4e67fbc24b1ed41c5"),
    (
        "9 notification JSON",
        ("bot31835", PASSWORD, "220171004154635022158001", "2"),
        "075c4983ba9883d41e1b3eab0de580dfc73d875b",
    ),
    (
        "10 notification XML, legacy form without the status",
        ("bot31025", PASSWORD, "300134486"),
        "9ed18926fa88f83b469f3ae73ef71ef2a4835c03",
    ),
    (
        "10b notification XML, documented form",
        ("bot31025", PASSWORD, "300134486", "2"),
        "b993b29c1fee46c20c0aad2b879167ed6cf70416",
    ),
    (
        "11 return URL",
        ("bot99999", PASSWORD, "4370", "0"),
        "0da33ad07fe9980f7b7ff70a964803e821a86866",
    ),
]


@pytest.mark.parametrize(
    ("row", "parts", "expected"), KNOWN_ANSWERS, ids=[r[0] for r in KNOWN_ANSWERS]
)
def test_sign_reproduces_the_documented_example(
    row: str, parts: tuple[str, ...], expected: str
) -> None:
    assert sign(*parts) == expected


@pytest.mark.parametrize(
    ("row", "parts", "expected"), KNOWN_ANSWERS, ids=[r[0] for r in KNOWN_ANSWERS]
)
def test_matches_accepts_the_documented_example(
    row: str, parts: tuple[str, ...], expected: str
) -> None:
    assert matches(expected, *parts)


def test_channel_inquiry_formula_is_user_id_and_password() -> None:
    assert channel_inquiry_signature("bot98765", PASSWORD) == KNOWN_ANSWERS[0][2]


def test_bill_formula_signs_the_dana_post_data_example() -> None:
    assert bill_signature("bot99999", PASSWORD, "20201222023626") == (
        "7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7"
    )


def test_status_formula_appends_the_status() -> None:
    assert status_signature("bot99999", PASSWORD, "4370", "0") == (
        "0da33ad07fe9980f7b7ff70a964803e821a86866"
    )


GOOD = "0da33ad07fe9980f7b7ff70a964803e821a86866"
REJECTED_CANDIDATES = [
    pytest.param([GOOD], id="list"),
    pytest.param(0, id="number zero"),
    pytest.param(int("1" * 40), id="big number"),
    pytest.param(None, id="null"),
    pytest.param(GOOD.encode(), id="bytes"),
    pytest.param(GOOD.upper(), id="uppercase"),
    pytest.param(GOOD[:-1], id="39 chars"),
    pytest.param(GOOD + "0", id="41 chars"),
    pytest.param("é" * 40, id="non-ASCII"),
    pytest.param("0e" + "1" * 38, id="magic hash shape"),
    pytest.param("", id="empty"),
    pytest.param({"signature": GOOD}, id="object"),
    pytest.param(True, id="boolean"),
]


@pytest.mark.parametrize("candidate", REJECTED_CANDIDATES)
def test_matches_rejects_wrong_types_and_shapes_without_raising(candidate: object) -> None:
    assert matches(candidate, "bot99999", PASSWORD, "4370", "0") is False


def test_dana_redirect_url_carries_the_post_data_signature(gateway: FaspayDanaGateway) -> None:
    payment = Payment(
        provider="faspay_dana",
        merchant_reference="20201222023626",
        status=PaymentStatus.PENDING,
        amount=Money("2000", "IDR"),
        provider_reference="9999981900021790",
    )
    url = urlsplit(gateway.redirect(payment).url)
    assert url.path == ("/pws/100003/0830000010100000/7ad74a4aa1c86aeb1308ea5c44e4aa0f4d6ed4e7")
    assert dict(parse_qsl(url.query)) == {
        "trx_id": "9999981900021790",
        "merchant_id": "99999",
        "bill_no": "20201222023626",
    }
