"""The emulator's behaviour settings, shared by its collaborators (one mutable object).

:class:`EmulatorApp` validates its constructor options into one :class:`Settings` and exposes
each field as an attribute of its own (:class:`Setting`), so ``app.language = "id"`` still
changes what every handler does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Generic, Literal, Protocol, TypeVar, overload

from gateway_faspay_dana.emulator import _codes as codes

DuplicateMode = Literal["return_existing", "reject", "new_bill"]
MalformedMode = Literal["format_error", "response_error", "http_400"]
Language = Literal["en", "id"]
OvoPushMode = Literal["immediate", "blocking"]

T = TypeVar("T")


@dataclasses.dataclass(slots=True)
class Settings:
    """What the emulator assumes where Faspay's behaviour is undocumented (see ``_app``)."""

    duplicate_bill_no: DuplicateMode = "return_existing"
    duplicate_bill_no_code: str = codes.INVALID_ORDER
    malformed_request: MalformedMode = "format_error"
    bad_signature_code: str = codes.BAD_CREDENTIALS
    language: Language = "en"
    stage: str = codes.SANDBOX_STAGE
    public_url: str | None = None
    notify_statuses: frozenset[str] = frozenset({"2", "3", "4", "7", "8"})
    control_api: bool = True
    strict: bool = False
    """Documented length limits refuse (``30``); off: accepted and logged (the sandbox)."""
    accept_amount_mismatch: bool = False
    """ASSUMPTION closed-amount VAs/retail codes: a payment of another amount is refused."""
    ovo_push_mode: OvoPushMode = "immediate"
    """``immediate``: the push call answers ``00`` at once; ``blocking``: it waits for the
    payer's decision or the window (the real behaviour is unknown, §4.2)."""
    ovo_push_window: float = 60.0
    """ASSUMPTION: seconds (emulator time) an OVO push waits before failing with a timeout."""

    @classmethod
    def from_options(
        cls,
        *,
        duplicate_bill_no: DuplicateMode,
        duplicate_bill_no_code: str,
        malformed_request: MalformedMode,
        bad_signature_code: str,
        language: Language,
        redirect_stage: Literal["sandbox", "production"],
        public_url: str | None,
        notify_statuses: Iterable[str],
        control_api: bool,
        strict: bool = False,
        accept_amount_mismatch: bool = False,
        ovo_push_mode: OvoPushMode = "immediate",
        ovo_push_window: float = 60.0,
    ) -> Settings:
        """Validate :class:`EmulatorApp`'s constructor options (``ValueError`` if invalid)."""
        if duplicate_bill_no not in ("return_existing", "reject", "new_bill"):
            raise ValueError("duplicate_bill_no must be return_existing, reject or new_bill")
        if malformed_request not in ("format_error", "response_error", "http_400"):
            raise ValueError("malformed_request must be format_error, response_error or http_400")
        if language not in ("en", "id"):
            raise ValueError("language must be 'en' or 'id'")
        if redirect_stage not in ("sandbox", "production"):
            raise ValueError("redirect_stage must be 'sandbox' or 'production'")
        if ovo_push_mode not in ("immediate", "blocking"):
            raise ValueError("ovo_push_mode must be 'immediate' or 'blocking'")
        if ovo_push_window < 0:
            raise ValueError("ovo_push_window must be >= 0")
        return cls(
            duplicate_bill_no=duplicate_bill_no,
            duplicate_bill_no_code=duplicate_bill_no_code,
            malformed_request=malformed_request,
            bad_signature_code=bad_signature_code,
            language=language,
            stage=codes.SANDBOX_STAGE if redirect_stage == "sandbox" else codes.PRODUCTION_STAGE,
            public_url=public_url.rstrip("/") if public_url else None,
            notify_statuses=frozenset(str(s) for s in notify_statuses),
            control_api=control_api,
            strict=bool(strict),
            accept_amount_mismatch=bool(accept_amount_mismatch),
            ovo_push_mode=ovo_push_mode,
            ovo_push_window=float(ovo_push_window),
        )


class _HasSettings(Protocol):
    settings: Settings


class Setting(Generic[T]):
    """An attribute of the owner that reads and writes the field of its ``settings``."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    @overload
    def __get__(self, obj: None, objtype: type | None = None) -> Setting[T]: ...

    @overload
    def __get__(self, obj: _HasSettings, objtype: type | None = None) -> T: ...

    def __get__(self, obj: _HasSettings | None, objtype: type | None = None) -> Setting[T] | T:
        if obj is None:
            return self
        value: T = getattr(obj.settings, self.name)
        return value

    def __set__(self, obj: _HasSettings, value: T) -> None:
        setattr(obj.settings, self.name, value)
