"""Re-export of :mod:`ttcs.testing.net`."""

from ttcs.testing.net import free_port, wait_port

__all__ = ["free_port", "wait_port"]
