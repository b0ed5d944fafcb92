"""Helpers for testing and benchmarking the hub and its plugins against real infrastructure
(a private Mosquitto on its own port, TLS material). Used by the test suite, ``bench/`` and
vendors' own test suites."""

from .mosquitto import Mosquitto, make_tls_files

__all__ = ["Mosquitto", "make_tls_files"]
