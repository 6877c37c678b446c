"""Faspay Debit wire messages: one module per message family, one class per message.

========================  ==============================================================
module                    messages
========================  ==============================================================
:mod:`.channels`          payment channel inquiry (§5): ``ChannelInquiryRequest`` /
                          ``ChannelInquiryResponse``, ``PaymentChannel``
:mod:`.create`            post data transaction (§6): ``PostDataRequest`` (with
                          ``PostDataItem``, ``Address``) / ``PostDataResponse``
:mod:`.inquiry`           inquiry payment status (§8): ``InquiryRequest`` /
                          ``InquiryResponse``
:mod:`.cancel`            cancel transaction (§9): ``CancelRequest`` / ``CancelResponse``
:mod:`.notification`      payment notification (§10): ``PaymentNotification``,
                          ``decode_notification``, and our reply ``NotificationAck``
:mod:`.return_url`        the customer's return (§12): ``ReturnQuery``
:mod:`.common`            field rules, constants and the response envelope they share
========================  ==============================================================

Each class codes only the direction the plugin uses: what we send has ``to_payload`` (requests
validate Faspay's field rules when constructed and raise
:class:`~gateway_faspay_dana.InvalidRequest`), what Faspay sends has ``from_payload`` /
``from_query`` (raising :class:`~gateway_faspay_dana.PayloadError`). Faspay's side of each
message (building a notification, reading a create request) lives where it is used: the
emulator's own ``emulator/_messages.py``, :mod:`gateway_faspay_dana._faspay_side` for
:mod:`gateway_faspay_dana.testing`, and the tests' ``faspay_side.py``.

Responses accept both of Faspay's shapes: the normal body, and the undocumented
``{"response_error": {"response_code": ..., "response_desc": ...}}`` wrapper (§2.4), which
reads as a response with only a code and a description.

Protocol choices (see the reference's §14):

- ``pay_type`` and ``payment_plan`` are sent as ``"1"``, the documented one-character value
  (the DANA example's ``"01"`` is accepted when parsing; Faspay takes both, #7);
- ``item`` is sent as an array (#8) and read as an array or a single object;
- ``bank_userid`` is spelled as in every sample (#2) and sent only when set; so are the other
  optional fields that are not in the DANA example (``shipping_address_country_code``). The
  DANA example's key set is always sent, addresses as ``""`` when unknown;
- empty values may arrive as ``""``, ``null``, ``[]`` or missing (#14), and ``payment_reff``
  as the literal ``"null"`` (#15).

Import from the modules (``gateway_faspay_dana._messages.create``); the public names are
re-exported by :mod:`gateway_faspay_dana`.
"""
