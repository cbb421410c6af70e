"""Kafka and the schema registry: Confluent-framed Avro serde, the registry client, topic admin, reading a
snapshot of the log, subscribing. Knows the contract, nothing of tables or releases."""
