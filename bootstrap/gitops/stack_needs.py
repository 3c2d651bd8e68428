"""The service accounts and secrets one environment's main stack names: the only ones the
deployer may act as or change the IAM policy of.

Read from the main program's stack file (`Pulumi.<environment>.yaml` at the repository
root), validated by the main program's own settings, so the bootstrap and the program
can't disagree about a name: an invalid stack file stops the bootstrap, naming the key.
Adding a pipeline, a pipeline's first schedule or a secret to that file means re-running
the bootstrap (`pulumi up` in bootstrap/) before the change is merged (docs/gitops.md,
"Service accounts and secrets").
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Final

from components.name_rules import (
    invoker_account,
    invoker_display_name,
    runtime_account,
    runtime_display_name,
    ticker_display_name,
)
from components.names import secret_ids, ticker_account
from components.settings import ConfigError
from components.settings.config import settings_from_config
from plan.stackfile import StackFileError, read_stack_file

ROOT: Final = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackNeeds:
    project: str
    """The main stack's `gcp:project`."""
    accounts: dict[str, str]
    """Account id -> display name, as the main program creates them."""
    secrets: tuple[str, ...]
    """Secret ids the stack's services read (and the deployer grants access to)."""


def stack_file(environment: str) -> Path:
    return ROOT / f"Pulumi.{environment}.yaml"


def stack_needs(environment: str, path: Path | None = None) -> StackNeeds:
    """What the main stack ENVIRONMENT names, or a ValueError naming the file and key."""
    path = path or stack_file(environment)
    try:
        file = read_stack_file(path)
        settings = settings_from_config(file.config, file.secret_keys, environment)
    except (FileNotFoundError, StackFileError, ConfigError) as error:
        raise ValueError(f"the main stack file {path.name}: {error}") from None
    accounts: dict[str, str] = {}
    secrets: set[str] = set()
    for name, pipeline in sorted(settings.pipelines.items()):
        accounts[invoker_account(name)] = invoker_display_name(name)
        accounts[runtime_account(name)] = runtime_display_name(name)
        if pipeline.schedules:
            accounts[ticker_account(name)] = ticker_display_name(name)
        secrets |= set(secret_ids(pipeline))
    return StackNeeds(str(settings.project), accounts, tuple(sorted(secrets)))
