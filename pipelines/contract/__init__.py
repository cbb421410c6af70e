"""The contract with producers and consumers: topics, record types, ids, vocabularies, Avro schemas,
their compatibility rules and the AsyncAPI document. Imports nothing else of Ballotstream but settings and errors."""
