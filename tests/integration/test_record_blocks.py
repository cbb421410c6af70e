"""Against the real broker: a snapshot consumer handing over record blocks (``pipelines.kafka.record_batches``)
reads exactly what a stock kafka-python consumer reads, from batches the broker keeps as producers sent them:
uncompressed and gzip, null keys and values, headers, and a start inside a batch."""

from __future__ import annotations

from kafka import KafkaConsumer, TopicPartition

from pipelines.contract.topics import RESULTS
from pipelines.kafka.admin import ensure_topics
from pipelines.kafka.clients import consumer, producer, read_until
from pipelines.kafka.record_batches import PartitionBlocks, RecordBlock, install
from pipelines.kafka.serde import BytesSerializer


def _produce(settings, topic: str) -> None:
    for compression in (None, "gzip"):
        source = producer(settings, compression_type=compression, linger_ms=50, key_serializer=BytesSerializer(),
                          value_serializer=BytesSerializer())
        try:
            for i in range(300):
                key = None if i % 7 == 0 else f"station-{i}".encode()
                value = None if i % 11 == 1 and key is not None else bytes([i % 256]) * (i * 37 % 9000)
                headers = [("origin", b"test")] if i % 5 == 0 else []
                source.send(topic, key=key, value=value, headers=headers, partition=i % 2)
            source.flush()
        finally:
            source.close()


def _read(settings, topic: str, start: int, blocks: bool) -> list[tuple[int, int, bytes | None, bytes | None]]:
    source: KafkaConsumer = consumer(settings, max_poll_records=10000)
    try:
        if blocks:
            install(source)
        tps = [TopicPartition(topic, p) for p in (0, 1)]
        source.assign(tps)
        for tp in tps:
            source.seek(tp, start)
        out = []
        for tp, msg in read_until(source, source.end_offsets(tps), poll_ms=2000):
            if isinstance(msg, RecordBlock):
                out += [(tp.partition, int(msg.offsets[i]), msg.key(i), msg.value(i)) for i in range(len(msg))]
            else:
                out.append((tp.partition, msg.offset, msg.key, msg.value))
        return out
    finally:
        source.close()


def test_a_block_consumer_reads_what_kafka_python_reads(isolated):
    ensure_topics(isolated)
    topic = isolated.topic(RESULTS.name)
    _produce(isolated, topic)
    before = PartitionBlocks.blocks
    for start in (0, 41):  # 41: inside a batch
        theirs = _read(isolated, topic, start, blocks=False)
        ours = _read(isolated, topic, start, blocks=True)
        assert len(theirs) == 600 - 2 * start
        assert ours == theirs
    assert PartitionBlocks.blocks > before
