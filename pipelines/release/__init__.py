"""Releases: stage folded tables as deterministic Parquet, publish them atomically to S3, list them."""
