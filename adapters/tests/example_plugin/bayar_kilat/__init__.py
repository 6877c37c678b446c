"""Bayar Kilat: a complete example provider plugin for gateway-core, unlike Faspay.

The fictional Bayar Kilat API (its local server is ``bayar_kilat_server.py`` next to this
package; it is not part of the plugin):

* JSON over HTTPS with ``Authorization: Bearer <api_key>``;
* ``POST /v1/payments`` with an ``Idempotency-Key`` header: the same key answers with the
  payment it already made (no second charge); the answer holds the payment ``id``, a
  ``checkout_url`` and a one-time ``token`` the customer's browser POSTs to the checkout URL;
* ``GET /v1/payments/<id>`` (inquire) and ``POST /v1/payments/<id>/cancel``;
* amounts in whole units of the currency (``2000`` is IDR 2,000.00);
* notifications are JSON events signed in a header, ``X-Kilat-Signature: t=<unix
  time>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">``, refused outside a time tolerance;
  ``payment.*`` events change a payment's status, ``refund.succeeded`` does not;
* the success acknowledgement is ``204 No Content`` with an empty body;
* the customer comes back by a POSTed form, signed the same way over its fields.
"""

from __future__ import annotations

from bayar_kilat._gateway import BayarKilatGateway
from bayar_kilat._signing import (
    WIRE_EXPONENT,
    notification_headers,
    sign,
    signed_return_fields,
    verify_header,
)

__all__ = [
    "WIRE_EXPONENT",
    "BayarKilatGateway",
    "notification_headers",
    "sign",
    "signed_return_fields",
    "verify_header",
]
