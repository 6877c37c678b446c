"""What differs per channel family in Faspay's answers: extra post-data fields and the QR.

* VA and retail (§3.3, §6): ``trx_id`` is the VA number / payment code; ``redirect_url`` opens
  the emulator's instruction page (bank or store, number, amount, expiry).
* QRIS (§5.3): ``redirect_url`` (page with the QR), ``web_url`` (an SVG of the QR served by the
  emulator at ``/__assets/qr/<acquirer>/<merchant>-<trx_id>.svg`` — the sandbox serves a PNG
  at the same place; ASSUMPTION that an image of another type is as good for clients),
  ``alt_url`` (a page showing only the QR), ``qr_content`` (an EMVCo merchant-presented payload
  starting ``000201`` and ending in a valid CRC-16/CCITT-FALSE ``6304`` tag) and ``external_id``
  (empty, as observed in C20). ASSUMPTION: every QRIS answer carries all of them.
* OVO (§4.2): ``redirect_url`` to the emulator's "OVO number" page (option a).
* Redirect wallets and DANA: ``redirect_url`` to the wallet page.
"""

from __future__ import annotations

from typing import Any, Final

from gateway_faspay_dana.emulator._model import Bill

QR_ASSET_PREFIX: Final = "/__assets/qr/"


def crc16_ccitt(data: bytes) -> int:
    """CRC-16/CCITT-FALSE (poly 0x1021, init 0xFFFF), the EMVCo QR checksum."""
    crc = 0xFFFF
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else (crc << 1)
            crc &= 0xFFFF
    return crc


def _tlv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def qr_payload(bill: Bill, acquirer: str) -> str:
    """An EMVCo-style dynamic QRIS payload for ``bill`` (fake merchant account data)."""
    merchant_account = (
        _tlv("00", f"ID.CO.{acquirer.upper()}.WWW")
        + _tlv("01", f"93600{bill.merchant_id}"[:19])
        + _tlv("02", bill.trx_id)
        + _tlv("03", "UMI")
    )
    rupiah = bill.bill_total // 100
    cents = bill.bill_total % 100
    amount = f"{rupiah}" if not cents else f"{rupiah}.{cents:02d}"
    body = (
        _tlv("00", "01")
        + _tlv("01", "12")  # dynamic QR
        + _tlv("26", merchant_account)
        + _tlv("52", "5999")
        + _tlv("53", "360")  # IDR
        + _tlv("54", amount)
        + _tlv("58", "ID")
        + _tlv("59", (bill.merchant_name or "MERCHANT")[:25].upper())
        + _tlv("60", "JAKARTA")
        + _tlv("62", _tlv("01", bill.bill_no[:25]) + _tlv("05", bill.trx_id))
        + "6304"
    )
    return body + f"{crc16_ccitt(body.encode('utf-8')):04X}"


def qr_valid(payload: str) -> bool:
    """True when ``payload`` starts ``000201`` and its ``6304`` CRC tail matches."""
    if not payload.startswith("000201") or len(payload) < 8 or payload[-8:-4] != "6304":
        return False
    return f"{crc16_ccitt(payload[:-4].encode('utf-8')):04X}" == payload[-4:].upper()


def qr_svg(payload: str) -> bytes:
    """A scannable SVG of ``payload`` (rendered with ``segno``, imported on first use)."""
    import io

    import segno

    out = io.BytesIO()
    segno.make(payload, error="m", micro=False).save(out, kind="svg", scale=6, border=4)
    return out.getvalue()


def qr_asset_path(bill: Bill, acquirer: str) -> str:
    """The path of the QR image of ``bill``."""
    return f"{QR_ASSET_PREFIX}{acquirer}/{bill.merchant_id}-{bill.trx_id}.svg"


def post_data_extras(bill: Bill, base: str) -> dict[str, Any]:
    """The family-specific fields of the post-data answer (after ``response_desc``)."""
    spec = bill.spec
    if spec is None or spec.family != "qris":
        return {}
    web_url = base + qr_asset_path(bill, spec.acquirer)
    return {
        "web_url": web_url,
        "alt_url": web_url.replace(".svg", ".html"),
        "qr_content": bill.qr_content,
        "external_id": "",
    }
