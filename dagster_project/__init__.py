"""Thin Dagster wiring of ``pipelines``: assets, checks, a sensor and a schedule. Logic lives in ``pipelines``."""
