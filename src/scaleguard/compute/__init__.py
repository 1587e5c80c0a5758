"""Run many independent jobs through one interface: serially, on local processes, or on Ray."""

from scaleguard.compute._executor import (
    Executor,
    ProcessExecutor,
    Progress,
    SerialExecutor,
    get_executor,
)
from scaleguard.compute._ray import RayExecutor

__all__ = ["Executor", "ProcessExecutor", "Progress", "RayExecutor", "SerialExecutor",
           "get_executor"]
