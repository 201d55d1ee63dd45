"""The monitoring tests reuse the integration suite's harness (real
PostgreSQL, Redis and daemons on free loopback ports)."""

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
sys.path.insert(0, str(HERE))
