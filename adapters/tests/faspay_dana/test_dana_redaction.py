"""The Faspay plugin contributes the shapes of its personal data and signatures to redaction.

The core knows only provider-neutral shapes (hex signatures, e-mail addresses, E.164 phone
numbers, URL queries); an Indonesian mobile number written ``08...`` and the signature in
Faspay's ``/pws/`` payment-page path are the plugin's (issue 10, item 7).
"""

from __future__ import annotations

import pytest
from redaction_cost import hostile_cost_ratio

from gateway_core import PluginHost, redact_text
from gateway_core._redact import REDACTED, redact_excerpt
from gateway_faspay_dana.plugin import REDACTION_PATTERNS


@pytest.fixture(autouse=True)
def _faspay_loaded() -> None:
    PluginHost()  # loads the faspay_dana entry point, which contributes its patterns


@pytest.mark.parametrize("phone", ["08123456789", "+6281234567890", "6281234567890", "81234567890"])
def test_an_indonesian_mobile_number_is_redacted_in_any_written_form(phone: str) -> None:
    assert redact_text(f"msisdn {phone}, ok") == f"msisdn {REDACTED}, ok"


def test_the_payment_page_signature_is_redacted_and_the_path_kept() -> None:
    url = "https://x.example/pws/100003/0830000010100000/abcDEF-123?trx_id=1"
    text = redact_text(f"GET {url}")
    assert "abcDEF-123" not in text
    assert "trx_id=1" not in text
    assert "/pws/100003/0830000010100000/[redacted]" in text


def test_patterns_are_active_before_the_gateway_class_is_imported() -> None:
    """Registered from the entry-point module's hook; the provider loads lazily."""
    host = PluginHost()
    info = host.registry.get("faspay_dana")
    assert info._gateway_class is None  # registered by reference, not imported by the host
    assert redact_text("tel 081234567890") == f"tel {REDACTED}"


def test_every_pattern_is_registered_once_however_often_the_plugin_loads() -> None:
    from gateway_core._redact import _PATTERNS

    PluginHost()
    sources = [p.pattern for p in _PATTERNS.patterns]
    assert all(sources.count(p) == 1 for p in REDACTION_PATTERNS)


@pytest.mark.parametrize(
    "unit", ["+628 ", "628", "08", "8", "0 ", "/pws/1/1/", "/pws/", "/pws/1/1/a/"], ids=repr
)
def test_a_hostile_16_kib_body_costs_at_most_twice_ordinary_junk(unit: str) -> None:
    ratio = hostile_cost_ratio(unit)
    assert ratio <= 2.0, f"{unit!r} costs {ratio:.1f}x junk"


def test_a_cut_never_leaves_part_of_a_phone_number() -> None:
    secret = "081234567890"
    text = 'note: {"msisdn": ' + secret + " tail} " + "more " * 20
    start = text.index(secret)
    for limit in range(start - 2, len(text) + 1):
        excerpt = redact_excerpt(text, limit)
        leaked = [secret[:k] for k in range(2, len(secret) + 1) if secret[:k] in excerpt]
        assert not leaked, (limit, excerpt)
