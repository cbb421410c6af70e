"""Read Ballotstream topics with nothing but confluent-kafka's stock Avro deserializer and schema registry client.

This proves (and shows) that the topics use the standard Confluent wire format: any Confluent-compatible client in
any language can read them. Nothing from Ballotstream is imported here.

It reads each partition from the beginning up to the end offset it saw at start, then exits: partitions are
assigned directly, so there is no consumer-group join or rebalance to wait for.

    pip install "confluent-kafka[avro,schemaregistry]"
    python examples/confluent_consumer.py --topic ballotstream.results --max-events 5
"""

from __future__ import annotations

import argparse
import json
import sys

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def end_offsets(consumer: Consumer, topics: list[str], timeout: float) -> dict[tuple[str, int], int]:
    """Each non-empty partition's end offset now: reading stops there."""
    ends = {}
    metadata = consumer.list_topics(timeout=timeout)
    for topic in topics:
        if topic not in metadata.topics or metadata.topics[topic].error is not None:
            raise SystemExit(f"unknown topic: {topic}")
        for partition in metadata.topics[topic].partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition), timeout=timeout)
            if high > low:
                ends[(topic, partition)] = high
    return ends


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka bootstrap servers")
    parser.add_argument("--registry", default="http://127.0.0.1:18081/apis/ccompat/v7",
                        help="schema registry URL (Confluent API)")
    parser.add_argument("--topic", nargs="+", default=["ballotstream.results"], help="one or more topics")
    parser.add_argument("--max-events", type=int, default=None, help="stop after this many (default: read to the end)")
    parser.add_argument("--idle-seconds", type=float, default=30.0, help="give up after this long without events")
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry, "timeout": 10})
    # No reader schema: each message is decoded with the writer schema its id names in the registry.
    # A topic carries several record types, registered as "<topic>-<record name>" subjects: say so, rather than
    # leave the client to ask the registry for topic associations, an API the Confluent one only lately gained.
    decode = AvroDeserializer(registry, conf={"subject.name.strategy.type": "TOPIC_RECORD"})
    # group.id is required by librdkafka even when nothing joins a group; offsets are never committed.
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": "ballotstream-example",
                         "enable.auto.commit": False})
    seen = 0
    try:
        pending = end_offsets(consumer, args.topic, args.idle_seconds)
        consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in pending])
        while pending and (args.max_events is None or seen < args.max_events):
            msg = consumer.poll(args.idle_seconds)
            if msg is None:
                raise SystemExit(f"no event for {args.idle_seconds:g} s; still waiting on {sorted(pending)}")
            if msg.error():
                raise SystemExit(f"kafka error: {msg.error()}")
            where = (msg.topic(), msg.partition())
            if where not in pending:
                continue  # written after we started: not ours to read
            if msg.offset() + 1 >= pending[where]:
                del pending[where]
                consumer.incremental_unassign([TopicPartition(*where)])
            value = decode(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            key = msg.key().decode() if msg.key() is not None else None
            print(json.dumps({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                              "key": key, "value": value},
                             default=str, ensure_ascii=False), flush=True)
            seen += 1
    finally:
        consumer.close()
    print(f"read {seen} events", file=sys.stderr)


if __name__ == "__main__":
    main()
