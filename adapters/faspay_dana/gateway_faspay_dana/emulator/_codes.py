"""Code tables and fixed texts of the Faspay Debit API (protocol reference §5–§11)."""

from __future__ import annotations

from typing import Final

# --- payment_status_code (§11.2) -----------------------------------------------------------

UNPROCESSED: Final = "0"
IN_PROCESS: Final = "1"
PAID: Final = "2"
FAILED: Final = "3"
REVERSED: Final = "4"
NOT_FOUND: Final = "5"
EXPIRED: Final = "7"
CANCELLED: Final = "8"
UNKNOWN: Final = "9"

#: Statuses a bill can still leave through payment, failure, expiry or cancellation.
OPEN_STATUSES: Final = frozenset({UNPROCESSED, IN_PROCESS})

STATUS_DESC: Final[dict[str, dict[str, str]]] = {
    "en": {
        UNPROCESSED: "Unprocessed",
        IN_PROCESS: "In Process",
        PAID: "Payment Success",
        FAILED: "Payment Failed",
        REVERSED: "Payment Reversal",
        NOT_FOUND: "No bills found",
        EXPIRED: "Payment Expired",
        CANCELLED: "Payment Cancelled",
        UNKNOWN: "Unknown",
    },
    "id": {
        UNPROCESSED: "Belum diproses",
        IN_PROCESS: "Dalam proses",
        PAID: "Payment Sukses",
        FAILED: "Payment Gagal",
        REVERSED: "Payment Reversal",
        NOT_FOUND: "Tagihan tidak ditemukan",
        EXPIRED: "Payment Expired",
        CANCELLED: "Payment Cancelled",
        UNKNOWN: "Unknown",
    },
}

# --- response_code (§11.1) --------------------------------------------------------------------

OK: Final = "00"
INVALID_MERCHANT: Final = "03"
INVALID_AMOUNT: Final = "13"
INVALID_ORDER: Final = "14"
ORDER_CANCELLED: Final = "17"
FORMAT_ERROR: Final = "30"
NOT_SUPPORTED: Final = "40"
ORDER_EXPIRED: Final = "54"
BAD_CREDENTIALS: Final = "55"
PAYMENT_REVERSED: Final = "80"
ALREADY_PAID: Final = "81"
MANDATORY: Final = "83"

RESPONSE_DESC: Final[dict[str, str]] = {
    "00": "Success",
    "03": "Invalid Merchant",
    "13": "Invalid Amount",
    "14": "Invalid Order",
    "17": "Order Cancelled by Merchant/Customer",
    "18": "Invalid Customer or MSISDN is not found",
    "21": "Subscription is Expired",
    "30": "Format Error",
    "40": "Requested Function not Supported",
    "54": "Order is Expired",
    "55": "Incorrect User/Password",
    "56": "Security Violation (from unknown IP-Address)",
    "63": "Not Active / Suspended",
    "66": "Internal Error",
    "80": "Payment Was Reversal",
    "81": "Already Been Paid",
    "82": "Unregistered Entity",
    "83": "Parameter is mandatory",
    "84": "Unregistered Parameters",
    "85": "Insufficient Paramaters",
    "96": "System Malfunction",
}

#: Indonesian texts the sandbox is known to answer with (DANA ref §8, §15; C9/C10 mocks).
RESPONSE_DESC_ID: Final[dict[str, str]] = {
    "00": "Sukses",
    "54": "Transaksi Anda telah kedaluwarsa.",
}

#: ASSUMPTION: Indonesian texts the emulator invented (no source shows the sandbox's wording);
#: used with ``language="id"`` for codes not in :data:`RESPONSE_DESC_ID`.
RESPONSE_DESC_ID_INVENTED: Final[dict[str, str]] = {
    "03": "Merchant tidak valid",
    "13": "Jumlah tidak valid",
    "14": "Order tidak valid",
    "17": "Order dibatalkan oleh Merchant/Pelanggan",
    "18": "Pelanggan tidak valid atau MSISDN tidak ditemukan",
    "30": "Format salah",
    "40": "Fungsi yang diminta tidak didukung",
    "55": "User/Password salah",
    "66": "Kesalahan internal",
    "80": "Pembayaran telah direversal",
    "81": "Sudah dibayar",
    "83": "Parameter wajib diisi",
    "96": "Sistem tidak berfungsi",
}


def response_desc(code: str, language: str = "en") -> str:
    """The text for a ``response_code``: the docs' English (default), or with
    ``language="id"`` the sandbox's Indonesian where known and an invented translation
    (ASSUMPTION, :data:`RESPONSE_DESC_ID_INVENTED`) otherwise."""
    if language == "id":
        known = RESPONSE_DESC_ID.get(code) or RESPONSE_DESC_ID_INVENTED.get(code)
        if known:
            return known
    return RESPONSE_DESC.get(code, "Unknown Error")


def status_desc(code: str, language: str = "en") -> str:
    """The documented text for a ``payment_status_code``."""
    return STATUS_DESC.get(language, STATUS_DESC["en"]).get(code, "Unknown")


# --- "response" texts of each message (§5–§9) -------------------------------------------------

RESPONSE_TEXT: Final[dict[str, dict[str, str]]] = {
    "en": {
        "channel_inquiry": "Request List of Payment Gateway",
        "create": "Transmission of Purchase Detail Info",
        "inquiry": "Inquiry Payment Status",
        "cancel": "Canceling Payment",
        "notification": "Payment Notification",
    },
    "id": {
        "channel_inquiry": "Daftar Payment Channel",
        "create": "Transmisi Info Detil Pembelian",
        "inquiry": "Pengecekan Status Pembayaran",
        "cancel": "Canceling Payment",
        "notification": "Payment Notification",
    },
}

# --- transaction status of the cancel response (§9; only 3 "Order Expired" is evidenced) ------

TRX_STATUS: Final[dict[str, tuple[str, str]]] = {
    UNPROCESSED: ("1", "Order Active"),
    IN_PROCESS: ("1", "Order Active"),
    PAID: ("2", "Order Paid"),
    EXPIRED: ("3", "Order Expired"),
    CANCELLED: ("4", "Order Cancelled"),
    FAILED: ("5", "Order Failed"),
    REVERSED: ("6", "Order Reversed"),
}

# --- payment channels (§11.3; kept for older imports: the registry is ``_channels``) --------

CHANNEL_NAMES: Final[dict[str, str]] = {
    "302": "LinkAja",
    "401": "BRI E-PAY",
    "402": "Permata",
    "408": "Maybank Virtual Account",
    "700": "CIMB Clicks",
    "701": "DANAMON ONLINE BANKING",
    "702": "BCA Virtual Account",
    "706": "Payment Point Indomaret",
    "707": "ALFAGROUP",
    "708": "Danamon VA",
    "711": "ShopeePay QRIS",
    "713": "ShopeePay App",
    "800": "BRI Virtual Account",
    "801": "BNI Virtual Account",
    "802": "Mandiri Virtual Account",
    "812": "OVO",
    "819": "DANA",
}

DANA: Final = "819"

# --- redirect stages (§2.2, §7) ---------------------------------------------------------------

SANDBOX_STAGE: Final = "0830000010100000"
PRODUCTION_STAGE: Final = "2830000010100000"
REDIRECT_STAGES: Final = frozenset({SANDBOX_STAGE, PRODUCTION_STAGE})

# --- API paths (§2.2) -------------------------------------------------------------------------

API_PATHS: Final[dict[str, str]] = {
    "/cvr/100001/10": "channel_inquiry",
    "/cvr/300011/10": "create",
    "/cvr/100004/10": "inquiry",
    "/cvr/100005/10": "cancel",
}

#: Every endpoint name a fault can target (``"*"`` matches any of them).
ENDPOINTS: Final = frozenset({*API_PATHS.values(), "redirect", "complete", "ovo_direct"})

#: The OVO Push to Pay path (channels reference §4.2, C18).
OVO_DIRECT_PATH: Final = "/pws/ovo_direct"
