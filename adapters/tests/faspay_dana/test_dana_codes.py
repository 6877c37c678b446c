"""Faspay's code tables mapped to the core's exceptions and statuses (§11)."""

from __future__ import annotations

import pytest

from gateway_core import (
    PaymentStatus,
    ProviderConfigurationError,
    ProviderRefused,
    ProviderTemporaryError,
)
from gateway_faspay_dana import PayloadError, payment_status, provider_error

CONFIGURATION = ["03", "40", "55", "56", "63", "82", "84"]
REFUSED = ["01", "13", "14", "17", "18", "21", "30", "54", "80", "81", "83", "85", "77", "XX"]
TEMPORARY = ["66", "96"]


@pytest.mark.parametrize("code", CONFIGURATION)
def test_configuration_codes_blame_our_setup(code: str) -> None:
    assert type(provider_error(code, operation="create")) is ProviderConfigurationError


@pytest.mark.parametrize("code", REFUSED)
def test_business_and_unknown_codes_are_refusals(code: str) -> None:
    assert type(provider_error(code, operation="create")) is ProviderRefused


@pytest.mark.parametrize("code", TEMPORARY)
def test_internal_error_codes_are_temporary(code: str) -> None:
    assert type(provider_error(code, operation="create")) is ProviderTemporaryError


def test_provider_error_carries_its_context() -> None:
    error = provider_error("81", operation="cancel", merchant_reference="INV-1")
    assert error.provider == "faspay_dana"
    assert error.provider_code == "81"
    assert error.merchant_reference == "INV-1"
    assert "Already Been Paid" in str(error)


def test_provider_description_is_shown_as_printable_text_only() -> None:
    error = provider_error("54", operation="cancel", description="Kedaluwarsa\r\nInjected: yes")
    assert "\n" not in str(error)
    assert "\r" not in str(error)


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("0", PaymentStatus.PENDING),
        ("1", PaymentStatus.IN_PROCESS),
        ("2", PaymentStatus.PAID),
        ("3", PaymentStatus.FAILED),
        ("4", PaymentStatus.REVERSED),
        ("5", PaymentStatus.UNKNOWN),
        ("7", PaymentStatus.EXPIRED),
        ("8", PaymentStatus.CANCELLED),
        ("9", PaymentStatus.UNKNOWN),
    ],
)
def test_payment_status_codes_map_to_core_statuses(code: str, status: PaymentStatus) -> None:
    assert payment_status(code) is status


@pytest.mark.parametrize("code", ["6", "10", "", "02", "-1", " 2"])
def test_undocumented_payment_status_codes_are_malformed(code: str) -> None:
    with pytest.raises(PayloadError):
        payment_status(code)
