"""End-to-end helpers live beside these tests (`airflow_standalone.py`)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
