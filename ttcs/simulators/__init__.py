"""Simulated devices that speak the vendors' real wire protocols, for tests and demos.

Each simulator keeps a ground truth and accepts faults (:mod:`ttcs.simulators.base`); a fleet
of them runs under ``ttcs sim run NAME`` with an HTTP control plane
(:mod:`ttcs.simulators.control`).
"""

from .base import Fault, Fleet, GroundTruth, PlayRecord, SimOptions, SimulatedDevice, SimulatorSpec

__all__ = ["Fault", "Fleet", "GroundTruth", "PlayRecord", "SimOptions", "SimulatedDevice",
           "SimulatorSpec"]
