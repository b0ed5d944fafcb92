"""Re-export: the Mosquitto launcher lives in :mod:`ttcs.testing` (benchmarks use it too)."""

from ttcs.testing import Mosquitto, make_tls_files

__all__ = ["Mosquitto", "make_tls_files"]
