"""cloudrun-tasks components. Installed, this folder is the package `cloudrun_tasks`
(pyproject.toml); in this repository it is imported as `components`.

The public components are loaded on first use (PEP 562), so that importing a light
module (components.durations, used by the enqueue client) doesn't import pulumi_gcp.
"""

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .inputs import ArgsError, PipelineInputs
    from .package import (
        AlertChannels,
        AlertChannelsArgs,
        DashboardPipelineInputs,
        IdempotencyStore,
        IdempotencyStoreArgs,
        ProjectApis,
        ProjectApisArgs,
        StackDashboard,
        StackDashboardArgs,
        TaskPipeline,
        TaskPipelineArgs,
    )

_PUBLIC = {
    "AlertChannels": ".package",
    "AlertChannelsArgs": ".package",
    "IdempotencyStore": ".package",
    "IdempotencyStoreArgs": ".package",
    "ProjectApis": ".package",
    "ProjectApisArgs": ".package",
    "StackDashboard": ".package",
    "StackDashboardArgs": ".package",
    "DashboardPipelineInputs": ".package",
    "TaskPipeline": ".package",
    "TaskPipelineArgs": ".package",
    "ArgsError": ".inputs",
    "PipelineInputs": ".inputs",
}
__all__ = [
    "AlertChannels",
    "AlertChannelsArgs",
    "ArgsError",
    "DashboardPipelineInputs",
    "IdempotencyStore",
    "IdempotencyStoreArgs",
    "PipelineInputs",
    "ProjectApis",
    "ProjectApisArgs",
    "StackDashboard",
    "StackDashboardArgs",
    "TaskPipeline",
    "TaskPipelineArgs",
]


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(_PUBLIC[name], __name__), name)
