"""``warm_up`` loads, before a waiting publisher waits, what its first publish would otherwise load."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from dagster_project.instance import write_instance_yaml
from dagster_project.run import LAZY_MODULES

PROBE = """
import json, sys
from dagster_project.run import warm_up
from pipelines.release import s3
from pipelines.settings import Settings
before = set(sys.modules)
warm_up(Settings())
print(json.dumps({"modules": sorted(set(sys.modules) - before), "s3_clients": s3._client.cache_info().currsize}))
"""


def test_warm_up_loads_the_instance_storage_great_expectations_and_the_lazy_modules(tmp_path: Path) -> None:
    write_instance_yaml(tmp_path)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, timeout=300,
                          check=True)
    probed = json.loads(done.stdout.strip().splitlines()[-1])
    loaded = set(probed["modules"])
    # The persistent instance's storage (its migrations' alembic) and GX are imported on first use, not with the
    # job's definition: after warm_up they are there.
    assert {"alembic", "great_expectations", "dagster_project.instance", *LAZY_MODULES} <= loaded
    assert probed["s3_clients"] == 1  # the bucket's client, built without asking the server anything
