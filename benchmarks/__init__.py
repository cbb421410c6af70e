"""Benchmarks of the publish path (``benchmarks/README.md``)."""

# Before any benchmark imports pyarrow: Arrow's default allocator is then the one a publish started by the CLI or
# Dagster gets (``pipelines/__init__.py``, ``pipelines.fold.allocator``).
import pipelines  # noqa: F401
