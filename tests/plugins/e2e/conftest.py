"""The extraction tests against the sandbox share helpers that live beside them (`sandbox_lake.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
