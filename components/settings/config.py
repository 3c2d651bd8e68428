"""Stack config in, settings out: which keys the program reads, which are secret, and one
error that lists every problem.

Pulumi hands a program its config as `NAMESPACE:KEY` strings (structured values as JSON
text) and says which keys were set with `--secret`. Only the project's own namespace and
the `gcp` provider's are read; a key in any other namespace is a typo that would
otherwise be ignored silently (`cloudrun-task:protect: false` deploying prod unprotected).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from functools import cache
from typing import Any

from .alerts import prod_problems
from .pipeline import PipelineSettings
from .stack import StackSettings
from .validation import (
    NAMESPACE,
    Loc,
    closest,
    validated,
)

GCP = "gcp"
# The engine's own namespace (pulumi:tags, pulumi:disable-default-providers): the CLI reads it.
ENGINE = "pulumi"
GCP_KEYS_READ = ("gcp:project", "gcp:region")


@cache
def gcp_provider_keys() -> frozenset[str]:
    """Every config key the gcp provider knows, from pulumi_gcp's own config module.

    The generated module has one property per key, each reading `__config__.get('key')`;
    the key strings are the constants of those getters.
    """
    from pulumi_gcp.config import vars as gcp_vars

    keys: set[str] = set()
    for attribute in vars(gcp_vars._ExportableConfig).values():
        if isinstance(attribute, property) and attribute.fget is not None:
            keys.update(
                const
                for const in attribute.fget.__code__.co_consts
                if isinstance(const, str) and const.isidentifier()
            )
    return frozenset(keys)


def _decode(value: Any) -> Any:
    """Structured config arrives as JSON text; plain strings stay strings."""
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value


def _config_key(loc: Loc) -> str:
    # Every problem is under a top-level key: the raw config is always a mapping.
    top = str(loc[0])
    return top if ":" in top else f"{NAMESPACE}:{top}"


def _key_problems(keys: Collection[str]) -> list[tuple[Loc, str]]:
    problems: list[tuple[Loc, str]] = []
    for key in keys:
        namespace, colon, name = key.partition(":")
        if not colon:
            problems.append(
                ((key,), f"{key}: config keys are NAMESPACE:NAME, e.g. {NAMESPACE}:{key}")
            )
        elif namespace == GCP and key not in GCP_KEYS_READ and name not in gcp_provider_keys():
            close = closest(name, sorted(gcp_provider_keys()))
            hint = f"did you mean gcp:{close}? " if close else ""
            problems.append(
                (
                    (key,),
                    f"{key}: unknown key of the gcp provider; {hint}"
                    "its keys are those of pulumi_gcp.config",
                )
            )
        elif namespace not in (NAMESPACE, GCP, ENGINE):
            close = closest(namespace, [NAMESPACE, GCP])
            hint = f"did you mean {close}:{name}? " if close else ""
            problems.append(
                (
                    (key,),
                    f"{key}: unknown namespace {namespace!r}; {hint}this program reads"
                    f" {NAMESPACE}:* and {GCP}:* keys",
                )
            )
    return problems


def settings_from_config(
    config: Mapping[str, Any], secret_keys: Collection[str] = (), stack: str = ""
) -> StackSettings:
    """Validate a whole stack config (keys as `NAMESPACE:KEY`) at once.

    STACK is the stack's name: a production one (alerts.PROD_STACKS) must name where its
    alerts go.

    Every problem becomes one line of a ConfigError, sorted by key path; a value under a
    secret key is shown as [secret].
    """
    raw = {
        key.removeprefix(f"{NAMESPACE}:"): _decode(value)
        for key, value in config.items()
        if key.startswith(f"{NAMESPACE}:") or key in GCP_KEYS_READ
    }
    settings = validated(
        StackSettings,
        raw,
        secret=lambda loc: _config_key(loc) in secret_keys,
        problems=[*_key_problems(config), *prod_problems(stack, raw)],
    )
    settings.mark_secret(secret_keys)
    settings.name_stack(stack)
    return settings


def parse_pipeline(raw: Mapping[str, Any]) -> PipelineSettings:
    """One pipeline's settings, for programs that build a TaskPipeline themselves."""
    return validated(PipelineSettings, raw)


def parse_settings(raw: Mapping[str, Any]) -> StackSettings:
    """Validate project keys given without their namespace (`pipelines`, `gcp:project`)."""
    return settings_from_config(
        {key if ":" in key else f"{NAMESPACE}:{key}": value for key, value in raw.items()}
    )


def load_settings() -> StackSettings:
    """This stack's settings, from the config and secret keys the Pulumi engine passed."""
    import pulumi
    from pulumi import runtime
    from pulumi.runtime.config import CONFIG

    keys = {**runtime.get_config_env(), **CONFIG.get()}
    return settings_from_config(
        {key: runtime.get_config(key) for key in keys},
        {key for key in keys if runtime.is_config_secret(key)},
        stack=pulumi.get_stack(),
    )
