"""Ballotstream's plain-Python core: contracts, ingestion, folding, the gate and releases.

Nothing here imports Dagster; ``dagster_project`` wires these functions into assets.
"""
