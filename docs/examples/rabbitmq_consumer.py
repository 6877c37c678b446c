"""A consumer of the gateway's events on RabbitMQ that applies each event exactly once.

The relay (``gateway-rabbitmq-relay``) publishes every payment event at least once: after a
lost confirm or a crash the same event can arrive again, with the same message id (the event
id). This consumer makes the effect exactly once by recording the message id in the same
SQLite transaction as the effect, and acknowledges the message only after that transaction
committed (a crash before the ack redelivers the message; the id then says "done").

Run it against the local broker (Ctrl-C stops it)::

    python docs/examples/rabbitmq_consumer.py --url amqp://guest:guest@127.0.0.1:5672/ \
        --exchange gateway.events --queue shop.orders --db orders.db
"""

from __future__ import annotations

import argparse
import json
import sqlite3
from typing import Any

import pika

SCHEMA = """
CREATE TABLE IF NOT EXISTS applied_events (
    message_id TEXT PRIMARY KEY,
    applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE TABLE IF NOT EXISTS order_events (
    order_reference TEXT NOT NULL,
    kind TEXT NOT NULL,
    amount TEXT,
    currency TEXT,
    event_id TEXT NOT NULL
);
"""


def open_store(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path)
    db.executescript(SCHEMA)
    return db


def apply_once(db: sqlite3.Connection, message_id: str, body: bytes) -> bool:
    """Apply one event unless its id was applied before; True when applied now."""
    event = json.loads(body)
    with db:  # one transaction: the id and the effect commit together, or neither does
        inserted = db.execute(
            "INSERT OR IGNORE INTO applied_events (message_id) VALUES (?)", (message_id,)
        ).rowcount
        if not inserted:
            return False  # a redelivery: already applied
        # The effect. A real order system would mark the order paid, ship it, refund it...
        amount = event["amount"] or {}
        db.execute(
            "INSERT INTO order_events VALUES (?, ?, ?, ?, ?)",
            (
                event["order_reference"],
                event["kind"],
                amount.get("amount"),
                amount.get("currency"),
                event["event_id"],
            ),
        )
    return True


def consume(
    url: str, exchange: str, queue: str, db_path: str, *, idle_timeout: float | None = None
) -> int:
    """Consume ``queue`` (bound to every event of ``exchange``) into ``db_path``; with
    ``idle_timeout``, return after that many seconds without a message. Returns how many
    events were applied (duplicates not counted)."""
    db = open_store(db_path)
    connection = pika.BlockingConnection(pika.URLParameters(url))
    applied = 0
    try:
        channel = connection.channel()
        channel.exchange_declare(exchange=exchange, exchange_type="topic", durable=True)
        channel.queue_declare(queue=queue, durable=True)
        channel.queue_bind(queue=queue, exchange=exchange, routing_key="#")
        channel.basic_qos(prefetch_count=50)
        message: Any
        for message in channel.consume(queue, inactivity_timeout=idle_timeout):
            method, properties, body = message
            if method is None:  # idle for idle_timeout seconds
                break
            if apply_once(db, properties.message_id, body):
                applied += 1
            channel.basic_ack(method.delivery_tag)  # only after the commit
        channel.cancel()
    finally:
        if connection.is_open:
            connection.close()
        db.close()
    return applied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--exchange", default="gateway.events")
    parser.add_argument("--queue", default="shop.orders")
    parser.add_argument("--db", default="orders.db")
    parser.add_argument("--idle-timeout", type=float, default=None)
    args = parser.parse_args()
    applied = consume(args.url, args.exchange, args.queue, args.db, idle_timeout=args.idle_timeout)
    print(f"applied {applied} events")


if __name__ == "__main__":
    main()
