"""The XML twins (``/pws/...``, channels reference §9), length leniency and ``strict``, the
``language`` texts, OVO (page and push call, §4.2, §14.5), the Return URL's full field set
(§10) and the CLI options, over real HTTP on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import defusedxml.ElementTree as SafeET
import pytest
import requests
from browser_forms import forms_of
from emulator_channels_support import (
    FAMILY_OF,
    Receiver,
    control,
    create,
    merchant,
    ovo_push,
    parse_fields,
    post_data,
    reference,
    start,
    wait,
)

from gateway_faspay_dana._signature import channel_inquiry_signature, matches
from gateway_faspay_dana.emulator import EmulatorServer, Merchant
from gateway_faspay_dana.emulator._cli import _parser

STAGE = "183xx00010100000"


def to_xml(body: dict[str, Any]) -> bytes:
    """A request as official plugins write it: one element per field, ``<item>`` repeated."""
    parts = []
    for key, value in body.items():
        if key == "item":
            items = value if isinstance(value, list) else [value]
            for item in items:
                inner = "".join(f"<{k}>{v}</{k}>" for k, v in item.items())
                parts.append(f"<item>{inner}</item>\n  ")
        else:
            parts.append(f"<{key}>{value}</{key}>\n  ")
    return (
        "<?xml version='1.0' encoding='UTF-8'?>\n<faspay>\n  " + "".join(parts) + "</faspay>"
    ).encode()


def xml_post(server: EmulatorServer, function: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(
        f"{server.url}/pws/{function}/{STAGE}",
        data=to_xml(body),
        headers={"Content-Type": "text/xml"},
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/xml")
    root = SafeET.fromstring(response.content)
    assert root.tag == "faspay"
    out: dict[str, Any] = {}
    for child in root:
        if len(child):
            out.setdefault(child.tag, []).append({c.tag: c.text or "" for c in child})
        else:
            out[child.tag] = child.text or ""
    return out


def json_post(server: EmulatorServer, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = requests.post(server.url + path, json=body, timeout=5)
    assert response.status_code == 200
    value: dict[str, Any] = response.json()
    return value


@pytest.fixture
def shop() -> Merchant:
    return merchant()


@pytest.fixture
def server(shop: Merchant) -> Iterator[EmulatorServer]:
    srv = start(shop)
    yield srv
    srv.stop()


def _same(json_answer: dict[str, Any], xml_answer: dict[str, Any]) -> None:
    expected = {k: v for k, v in json_answer.items() if k != "redirect_url"}
    if isinstance(expected.get("bill_items"), dict):
        expected["bill_items"] = [expected["bill_items"]]
    assert xml_answer == expected


@pytest.mark.parametrize("code", ["801", "402", "706", "711", "812", "302", "819"])
def test_xml_and_json_give_equivalent_answers_for_the_same_bill(
    code: str, server: EmulatorServer, shop: Merchant
) -> None:
    bill_no = f"X-{code}"
    body = post_data(shop, bill_no, code)
    first = json_post(server, "/cvr/300011/10", body)
    twin = xml_post(server, "300011", body)  # the same bill_no: the existing bill (default)
    _same(first, twin)
    assert "redirect_url" in first
    assert "redirect_url" not in twin
    if FAMILY_OF[code] == "qris":
        assert twin["qr_content"] == first["qr_content"] != ""

    ref = reference(shop, bill_no, first["trx_id"])
    _same(json_post(server, "/cvr/100004/10", ref), xml_post(server, "100004", ref))
    control(server, "pay", {"bill_no": bill_no})
    paid = json_post(server, "/cvr/100004/10", ref)
    assert paid["payment_status_code"] == "2"
    _same(paid, xml_post(server, "100004", ref))
    cancel = {**ref, "payment_cancel": "Barang Habis"}
    refused = json_post(server, "/cvr/100005/10", cancel)
    assert refused["response_code"] == "81"
    _same(refused, xml_post(server, "100005", cancel))

    inquiry = {
        "request": "Daftar Payment Channel",
        "merchant_id": shop.merchant_id,
        "signature": channel_inquiry_signature(shop.user_id, shop.password),
    }
    _same(json_post(server, "/cvr/100001/10", inquiry), xml_post(server, "100001", inquiry))
    kinds = [e["format"] for e in server.app.requests_log() if e["endpoint"] != "redirect"]
    assert kinds.count("xml") == kinds.count("json") == 5


def test_xml_requests_as_official_plugins_write_them(
    server: EmulatorServer, shop: Merchant
) -> None:
    body = post_data(shop, "X-amp", "800", merchant="Toko A & B", cust_name="Budi & Sari")
    body["item"] = [
        {
            "product": "Kaos",
            "qty": "1",
            "amount": "100000",
            "payment_plan": "1",
            "merchant_id": shop.merchant_id,
            "tenor": "00",
        },
        {
            "product": "Topi",
            "qty": "1",
            "amount": "100000",
            "payment_plan": "1",
            "merchant_id": shop.merchant_id,
            "tenor": "00",
        },
    ]
    answer = xml_post(server, "300011", body)  # bare '&', whitespace, two <item>s
    assert answer["response_code"] == "00"
    assert [i["product"] for i in answer["bill_items"]] == ["Kaos", "Topi"]
    assert server.app.bill("X-amp")["cust_name"] == "Budi & Sari"
    broken = requests.post(f"{server.url}/pws/300011/{STAGE}", data=b"<faspay><oops>", timeout=5)
    assert broken.headers["Content-Type"].startswith("text/xml")
    assert parse_fields(broken.content)["response_code"] == "30"
    wrong = requests.post(f"{server.url}/pws/999999/{STAGE}", data=b"<faspay/>", timeout=5)
    assert wrong.status_code == 404


def test_long_fields_are_accepted_and_logged_like_the_sandbox(
    server: EmulatorServer, shop: Merchant
) -> None:
    cust_no = "c" * 36  # a real third-party client's sandbox tests send 36 characters
    answer = create(server, shop, "L-1", "819", cust_no=cust_no, bill_desc="d" * 130)
    assert answer["response_code"] == "00"
    [entry] = server.app.requests_log("create")
    assert entry["leniencies"] == [
        "bill_desc is 130 characters, documented limit 128: accepted",
        "cust_no is 36 characters, documented limit 32: accepted",
    ]
    assert server.app.bill("L-1")["leniencies"] == entry["leniencies"]
    logged = requests.get(server.url + "/_emulator/requests?endpoint=create", timeout=5).json()
    assert logged["requests"][0]["leniencies"] == entry["leniencies"]
    plain = create(server, shop, "L-2", "819")
    assert plain["response_code"] == "00"
    assert server.app.requests_log("create")[1]["leniencies"] == []


def test_strict_mode_refuses_the_documented_limits(shop: Merchant) -> None:
    server = start(shop, strict=True)
    try:
        assert create(server, shop, "S-1", "819", cust_no="c" * 36)["response_code"] == "30"
        assert create(server, shop, "S-2", "819", cust_no="c" * 32)["response_code"] == "00"
        assert server.app.bills()[0]["bill_no"] == "S-2"
    finally:
        server.stop()


def test_indonesian_texts(shop: Merchant) -> None:
    server = start(shop, language="id")
    try:
        answer = create(server, shop, "I-1", "801")
        assert (answer["response"], answer["response_desc"]) == (
            "Transmisi Info Detil Pembelian",
            "Sukses",
        )
        refused = create(server, shop, "I-2", "801", bill_currency=None)
        assert refused["response_desc"] == "Parameter wajib diisi"  # invented (ASSUMPTION)
    finally:
        server.stop()


# --- OVO -------------------------------------------------------------------------------------


def test_ovo_direct_push_outcomes(server: EmulatorServer, shop: Merchant) -> None:
    trx = create(server, shop, "O-1", "812")["trx_id"]
    assert ovo_push(server, shop, trx, "081200008888")["response_code"] == "18"
    assert server.app.bill("O-1")["status"] == "0"
    assert ovo_push(server, shop, trx, "081200001234")["response_code"] == "00"
    assert server.app.bill("O-1")["status"] == "1"
    assert control(server, f"ovo/{trx}/respond", {"action": "decline"})[1]["status"] == "3"

    trx = create(server, shop, "O-2", "812")["trx_id"]
    ovo_push(server, shop, trx, "081200009999")
    control(server, "clock/advance", {"seconds": 61})  # the push window (60 s) passes
    assert server.app.bill("O-2")["status"] == "3"

    trx = create(server, shop, "O-3", "812")["trx_id"]
    bad = {"trx_id": trx, "ovo_number": "0812", "signature": "0" * 40}
    answer = requests.post(server.url + "/pws/ovo_direct", data=bad, timeout=5).json()
    assert answer["response_code"] == "55"
    unknown = ovo_push(server, shop, "9999981299999999", "081200001234")
    assert unknown["response_code"] == "14"
    status, scripted = control(server, f"ovo/{trx}/respond", {"action": "not_registered"})
    assert status == 200
    assert scripted["status"] == "0"
    assert ovo_push(server, shop, trx, "081200001234")["response_code"] == "18"
    control(server, "clock/advance", {"seconds": 3600})
    assert ovo_push(server, shop, trx, "081200001234")["response_code"] == "54"


def test_ovo_blocking_push_waits_for_the_payer(shop: Merchant) -> None:
    server = start(shop, ovo_push_mode="blocking", ovo_push_window=5.0)
    try:
        trx = create(server, shop, "O-b", "812")["trx_id"]
        assert ovo_push(server, shop, trx, "081200000000")["response_code"] == "17"  # declined
        trx = create(server, shop, "O-c", "812")["trx_id"]
        assert ovo_push(server, shop, trx, "081200001111")["response_code"] == "00"  # approved
        assert server.app.bill("O-c")["status"] == "2"
    finally:
        server.stop()


def test_ovo_page_option_a_returns_to_the_merchant(shop: Merchant) -> None:
    receiver = Receiver()
    shop = merchant(receiver)
    server = start(shop)
    try:
        answer = create(server, shop, "O-page", "812")
        with requests.Session() as browser:
            page = browser.get(answer["redirect_url"], timeout=5).text
            action, fields = forms_of(page)["ovo-push"]
            assert fields["ovo_number"] == "8562927907"  # msisdn pre-filled
            fields["ovo_number"] = "081200001234"
            waiting = browser.post(action, data=fields, timeout=5)
            assert "ovo-waiting" in waiting.text
            action, fields = forms_of(waiting.text)["ovo-approve"]
            done = browser.post(action, data=fields, allow_redirects=False, timeout=5)
        assert done.status_code == 302
        query = dict(parse_qsl(urlsplit(done.headers["Location"]).query))
        record = server.app.bill("O-page")
        assert query["status"] == "2"
        assert query["payment_reff"] == record["payment_reff"] != ""
        assert query["payment_date"] == record["payment_date"]
        assert query["bill_ref"] == query["bill_reff"] == "O-page"
        assert matches(query["signature"], shop.user_id, shop.password, "O-page", "2")
        wait(server)
        assert [parse_fields(b)["payment_channel_uid"] for b in receiver.bodies] == ["812"]
    finally:
        server.stop()
        receiver.close()


@pytest.mark.parametrize("code", ["801", "707", "715"])
def test_instrument_pages_pay_without_a_return_url(
    code: str, server: EmulatorServer, shop: Merchant
) -> None:
    answer = create(server, shop, f"V-{code}", code)
    with requests.Session() as browser:
        page = browser.get(answer["redirect_url"], timeout=5).text
        assert answer["trx_id"] in page
        assert server.app.bill(f"V-{code}")["status"] == "0"  # viewing is not paying
        [name] = [n for n in forms_of(page) if n.startswith("sim-")]
        action, fields = forms_of(page)[name]
        done = browser.post(action, data=fields, allow_redirects=False, timeout=5)
    assert done.status_code == 200
    assert "Location" not in done.headers
    assert server.app.bill(f"V-{code}")["status"] == "2"


def test_redirect_wallet_page_has_its_title_and_full_return_query(
    server: EmulatorServer, shop: Merchant
) -> None:
    answer = create(server, shop, "W-1", "713")
    with requests.Session() as browser:
        page = browser.get(answer["redirect_url"], timeout=5).text
        assert "ShopeePay App" in page
        action, fields = forms_of(page)["dana-fail"]
        done = browser.post(action, data=fields, allow_redirects=False, timeout=5)
    query = dict(parse_qsl(urlsplit(done.headers["Location"]).query, keep_blank_values=True))
    assert query["status"] == "3"
    assert query["payment_reff"] == query["payment_date"] == ""


def test_cli_options() -> None:
    args = _parser().parse_args([])
    assert (args.format, args.language, args.strict, args.ovo_push_mode) == (
        "xml",
        "en",
        False,
        "immediate",
    )
    args = _parser().parse_args(
        ["--notification-format", "json", "--language", "id", "--strict", "--channel", "all"]
    )
    assert (args.format, args.language, args.strict, args.channels) == ("json", "id", True, ["all"])
    assert json.loads(json.dumps(merchant(channels=tuple(args.channels)).channels))
