"""Signature verification compares in constant time, on the plain bytes of both signatures,
and nothing a candidate object does to ``==`` can make a wrong signature pass.

The Faspay signature is a public function of public values plus the password; a comparison
that stops at the first differing byte leaks, by timing, how much of a forged signature is
right. ``hmac.compare_digest`` does not, and it compares buffers, never ``__eq__``.
"""

from __future__ import annotations

import hmac
from typing import Any

import pytest

from gateway_faspay_dana import matches, sign

PARTS = ("bot99999", "p@ssw0rd", "4370", "0")
GOOD = sign(*PARTS)
#: Well formed (40 lowercase hex) but not the signature of PARTS.
WRONG = sign(*PARTS[:-1], "2")


class _AlwaysEqualBytes(bytes):
    """Bytes that claim to equal anything."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = bytes.__hash__


class _HostileSignature(str):
    """A well-formed signature string whose equality (as text or as bytes) always says yes."""

    def __eq__(self, other: object) -> bool:
        return True

    def __ne__(self, other: object) -> bool:
        return False

    __hash__ = str.__hash__

    def encode(self, encoding: str = "utf-8", errors: str = "strict") -> bytes:
        return _AlwaysEqualBytes(str(self).encode(encoding, errors))


def test_a_candidate_whose_equality_always_says_yes_still_fails_verification() -> None:
    """Plan R-SIG-1: a wrong signature wrapped in an object with a hostile ``__eq__`` is refused
    (an ``==`` comparison in place of ``hmac.compare_digest`` would accept it)."""
    hostile = _HostileSignature(WRONG)
    assert hostile == GOOD  # the object lies...
    assert matches(hostile, *PARTS) is False  # ...and verification does not ask it


def test_a_hostile_candidate_carrying_the_right_signature_is_accepted() -> None:
    """Plan R-SIG-2: the check is on the value, so the right signature passes whatever the
    candidate's class (the refusal above is not a refusal of subclasses)."""
    assert matches(_HostileSignature(GOOD), *PARTS) is True


def test_verification_verdict_is_the_constant_time_comparison_of_both_signatures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plan R-SIG-3: ``matches`` hands the candidate and the expected signature, as bytes, to
    ``hmac.compare_digest`` once, and returns its verdict."""
    calls: list[tuple[Any, Any]] = []

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return False  # a comparison that says "different" even for the right signature

    monkeypatch.setattr(hmac, "compare_digest", spy)

    assert matches(GOOD, *PARTS) is False
    assert len(calls) == 1
    candidate, expected = calls[0]
    assert type(candidate) is bytes
    assert type(expected) is bytes
    assert sorted([candidate, expected]) == [GOOD.encode(), GOOD.encode()]


def test_a_malformed_candidate_is_refused_before_any_comparison(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Plan R-SIG-4: a candidate of the wrong length or type never reaches the comparison
    (``compare_digest`` raises on ``str`` with non-ASCII text; here it must not even run)."""

    def refuse(a: Any, b: Any) -> bool:
        raise AssertionError("compared a malformed candidate")

    monkeypatch.setattr(hmac, "compare_digest", refuse)

    for candidate in (GOOD[:-1], GOOD + "0", GOOD.upper(), GOOD.encode(), "é" * 40, None):
        assert matches(candidate, *PARTS) is False


def test_one_wrong_character_anywhere_is_refused() -> None:
    """Plan R-SIG-5: every position of the signature counts (the first and last included)."""
    for position in range(len(GOOD)):
        flipped = "0" if GOOD[position] != "0" else "1"
        forged = GOOD[:position] + flipped + GOOD[position + 1 :]
        assert matches(forged, *PARTS) is False, position
