"""Ballotstream's plain-Python core: contracts, ingestion, folding, the gate and releases.

Nothing here imports Dagster; ``dagster_project`` wires these functions into assets.
"""

import os

# Arrow's C++ default allocator, chosen once, when pyarrow is first imported: the C library's malloc, which gives
# freed blocks back to the system (``pipelines.fold.allocator``). A choice made in the environment is kept.
os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
