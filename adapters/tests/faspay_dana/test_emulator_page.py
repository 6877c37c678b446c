"""The browser side: the redirect URL opens a fake DANA page whose forms pay, fail or abandon,
and the emulator sends the customer to the signed return URL (§7, §12)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from browser_forms import forms_of

from gateway_faspay_dana._signature import matches
from gateway_faspay_dana.emulator import (
    EmulatorApp,
    EmulatorServer,
    Merchant,
    example_post_data,
    return_query,
)

RETURN_URL = "https://shop.example/thanks?from=faspay"
MERCHANT = Merchant("99999", merchant_name="FASPAY STORE", return_url=RETURN_URL)


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    srv = EmulatorServer(EmulatorApp(MERCHANT, retry_interval=0.05)).start()
    yield srv
    srv.stop()


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def create(server: EmulatorServer, bill_no: str, **overrides: Any) -> dict[str, Any]:
    body = example_post_data(MERCHANT, bill_no, cust_name="FaspayTest", **overrides)
    answer: dict[str, Any] = requests.post(
        server.url + "/cvr/300011/10", json=body, timeout=5
    ).json()
    assert answer["response_code"] == "00"
    return answer


def submit(browser: requests.Session, page: str, form_id: str) -> requests.Response:
    action, fields = forms_of(page)[form_id]
    return browser.post(action, data=fields, allow_redirects=False, timeout=5)


def test_opening_the_page_moves_0_to_1_and_shows_stable_forms(
    server: EmulatorServer, browser: requests.Session
) -> None:
    answer = create(server, "4370")
    page = browser.get(answer["redirect_url"], timeout=5)
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert server.app.bill("4370")["status"] == "1"
    forms = forms_of(page.text)
    assert set(forms) == {"dana-pay", "dana-fail", "dana-abandon"}
    action, fields = forms["dana-pay"]
    assert action.endswith("/complete")
    assert fields == {
        "action": "pay",
        "trx_id": answer["trx_id"],
        "merchant_id": "99999",
        "bill_no": "4370",
        "bank_user_name": "FaspayTest",
    }
    for button in ("pay-button", "fail-button", "abandon-button"):
        assert f"id='{button}'" in page.text
    assert "Rp 2.000,00" in page.text


def test_pay_redirects_to_the_signed_return_url_in_the_documented_order(
    server: EmulatorServer, browser: requests.Session
) -> None:
    answer = create(server, "4370", bill_reff="REF-4370")
    page = browser.get(answer["redirect_url"], timeout=5).text
    done = submit(browser, page, "dana-pay")
    assert done.status_code == 302
    location = done.headers["Location"]
    assert location.startswith(RETURN_URL + "&trx_id=")
    query = parse_qsl(urlsplit(location).query)
    assert query[0] == ("from", "faspay")
    assert [k for k, _ in query[1:]] == [
        "trx_id",
        "merchant_id",
        "merchant",
        "bill_no",
        "bill_ref",
        "bill_reff",
        "bill_total",
        "payment_reff",
        "payment_date",
        "bank_user_name",
        "status",
        "signature",
    ]
    values = dict(query)
    assert values["merchant"] == "FASPAY STORE"
    assert "merchant=FASPAY+STORE" in location
    assert values["bill_ref"] == values["bill_reff"] == "REF-4370"
    record = server.app.bill("4370")
    assert values["payment_reff"] == record["payment_reff"] != ""
    assert values["payment_date"] == record["payment_date"] != ""
    assert values["bill_total"] == "200000"
    assert values["bank_user_name"] == "FaspayTest"
    assert values["status"] == "2"
    assert matches(values["signature"], "bot99999", "p@ssw0rd", "4370", "2")
    assert server.app.bill("4370")["status"] == "2"


def test_fail_gives_status_3(server: EmulatorServer, browser: requests.Session) -> None:
    answer = create(server, "B-fail")
    page = browser.get(answer["redirect_url"], timeout=5).text
    location = submit(browser, page, "dana-fail").headers["Location"]
    assert dict(parse_qsl(urlsplit(location).query))["status"] == "3"
    assert server.app.bill("B-fail")["status"] == "3"


def test_abandon_returns_with_status_1_and_changes_nothing(
    server: EmulatorServer, browser: requests.Session
) -> None:
    answer = create(server, "B-away")
    page = browser.get(answer["redirect_url"], timeout=5).text
    location = submit(browser, page, "dana-abandon").headers["Location"]
    values = dict(parse_qsl(urlsplit(location).query))
    assert values["status"] == "1"
    assert matches(values["signature"], "bot99999", "p@ssw0rd", "B-away", "1")
    assert server.app.bill("B-away")["status"] == "1"


def test_a_script_can_pay_with_one_post(server: EmulatorServer) -> None:
    answer = create(server, "B-script")
    action = re.sub(r"\?.*$", "/complete", answer["redirect_url"])
    form = {
        "action": "pay",
        "trx_id": answer["trx_id"],
        "merchant_id": "99999",
        "bill_no": "B-script",
    }
    done = requests.post(action, data=form, allow_redirects=False, timeout=5)
    assert done.status_code == 302
    assert server.app.bill("B-script")["status"] == "2"


def test_paying_twice_or_after_expiry_returns_the_current_status(
    server: EmulatorServer, browser: requests.Session
) -> None:
    answer = create(server, "B-twice")
    page = browser.get(answer["redirect_url"], timeout=5).text
    submit(browser, page, "dana-pay")
    again = submit(browser, page, "dana-fail")
    assert dict(parse_qsl(urlsplit(again.headers["Location"]).query))["status"] == "2"
    later = browser.get(answer["redirect_url"], timeout=5).text
    assert set(forms_of(later)) == {"dana-abandon"}
    assert "data-status='2'" in later

    expired = create(server, "B-late")
    page = browser.get(expired["redirect_url"], timeout=5).text
    server.app.advance_clock(3601)
    late = submit(browser, page, "dana-pay")
    assert dict(parse_qsl(urlsplit(late.headers["Location"]).query))["status"] == "7"


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        (lambda url: url.replace("?", "/extra?"), 404),
        (lambda url: re.sub(r"/[0-9a-f]{40}\?", "/" + "0" * 40 + "?", url), 403),
        (lambda url: url.replace("bill_no=B-bad", "bill_no=B-other"), 403),
        (lambda url: url.replace("trx_id=", "trx_id=1"), 404),
        (lambda url: url.replace("merchant_id=99999", "merchant_id=12345"), 404),
        (lambda url: url.replace("&bill_no=B-bad", ""), 400),
        (lambda url: url.replace("0830000010100000", "1111111111111111"), 404),
    ],
)
def test_bad_redirect_links(
    server: EmulatorServer, browser: requests.Session, mutate: Any, status: int
) -> None:
    answer = create(server, "B-bad")
    response = browser.get(mutate(answer["redirect_url"]), timeout=5)
    assert response.status_code == status
    assert server.app.bill("B-bad")["status"] == "0"


def test_production_stage_is_served_too(server: EmulatorServer) -> None:
    answer = create(server, "B-prod")
    url = answer["redirect_url"].replace("0830000010100000", "2830000010100000")
    assert requests.get(url, timeout=5).status_code == 200


def test_without_a_return_url_the_page_shows_the_result() -> None:
    app = EmulatorApp(Merchant("99999"))
    with EmulatorServer(app) as server:
        body = example_post_data(Merchant("99999"), "B-none")
        answer = requests.post(server.url + "/cvr/300011/10", json=body, timeout=5).json()
        with requests.Session() as browser:
            page = browser.get(answer["redirect_url"], timeout=5).text
            done = submit(browser, page, "dana-pay")
        assert done.status_code == 200
        assert "Payment Success" in done.text


def test_return_query_builder_reproduces_the_d7_example() -> None:
    query = return_query(
        Merchant("99999", merchant_name="FASPAY STORE"),
        trx_id="8985999990013136",
        bill_no="4370",
        status="0",
        bill_total="10000",
        bill_ref="4370",
        bank_user_name="FaspayTest",
        full=False,  # the example URL's fields only
    )
    assert urlencode(query) == (
        "trx_id=8985999990013136&merchant_id=99999&merchant=FASPAY+STORE&bill_no=4370"
        "&bill_ref=4370&bill_total=10000&bank_user_name=FaspayTest&status=0"
        "&signature=0da33ad07fe9980f7b7ff70a964803e821a86866"
    )
