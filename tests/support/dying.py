"""A job for a spawned process that ends it at once, without raising: as the kernel's OOM killer would."""

from __future__ import annotations

import os
from typing import Any


def exit_at_once(*_: Any) -> None:
    os._exit(9)
