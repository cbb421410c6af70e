"""Read a Ballotstream topic with nothing but confluent-kafka's stock Avro deserializer and schema registry client.

This proves (and shows) that the topics use the standard Confluent wire format: any Confluent-compatible client in
any language can read them. Nothing from Ballotstream is imported here.

    pip install "confluent-kafka[avro,schemaregistry]"
    python examples/confluent_consumer.py --topic ballotstream.results --max-events 5
"""

from __future__ import annotations

import argparse
import json
import uuid

from confluent_kafka import Consumer
from confluent_kafka.schema_registry import SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer
from confluent_kafka.serialization import MessageField, SerializationContext


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bootstrap", default="127.0.0.1:19092", help="Kafka bootstrap servers")
    parser.add_argument("--registry", default="http://127.0.0.1:18081/apis/ccompat/v7",
                        help="schema registry URL (Confluent API)")
    parser.add_argument("--topic", nargs="+", default=["ballotstream.results"], help="one or more topics")
    parser.add_argument("--max-events", type=int, default=10)
    parser.add_argument("--idle-seconds", type=float, default=10.0, help="stop after this long without events")
    args = parser.parse_args()

    registry = SchemaRegistryClient({"url": args.registry})
    # No reader schema: each message is decoded with the writer schema its id names in the registry.
    decode = AvroDeserializer(registry)
    consumer = Consumer({"bootstrap.servers": args.bootstrap, "group.id": f"example-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe(args.topic)
    seen = 0
    try:
        while seen < args.max_events:
            msg = consumer.poll(args.idle_seconds)
            if msg is None:
                break
            if msg.error():
                raise SystemExit(f"kafka error: {msg.error()}")
            value = decode(msg.value(), SerializationContext(msg.topic(), MessageField.VALUE))
            key = msg.key().decode() if msg.key() is not None else None
            print(json.dumps({"topic": msg.topic(), "partition": msg.partition(), "offset": msg.offset(),
                              "key": key, "value": value},
                             default=str, ensure_ascii=False), flush=True)
            seen += 1
    finally:
        consumer.close()


if __name__ == "__main__":
    main()
