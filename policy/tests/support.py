"""Runs policies the way pulumi-policy's analyzer server does, without the server.

`PolicyPack(...)` starts a gRPC server and blocks, so tests call each policy's
`validate` with arguments built here: properties wrapped in the same unknown-checking
proxy, unknowns as the engine's sentinels, enforcement levels from the same per-stack
config files CI passes with `--policy-pack-config`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.deserialize import deserialize_properties
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

from plan import recorder
from plan.recorder import Recording

POLICY_DIR = Path(__file__).resolve().parents[1]
REPO = POLICY_DIR.parent
# A stand-in for any unknown value in hand-built properties; the proxy treats every
# sentinel alike.
UNKNOWN = UNKNOWN_STRING_VALUE


@dataclass(frozen=True)
class Violation:
    policy: str
    level: EnforcementLevel
    message: str
    urn: str | None


def options(*, protect: bool = False, parent: str | None = None) -> PolicyResourceOptions:
    return PolicyResourceOptions(
        protect=protect,
        ignore_changes=[],
        delete_before_replace=None,
        aliases=[],
        custom_timeouts=PolicyCustomTimeouts(0, 0, 0),
        additional_secret_outputs=[],
        parent=parent,
    )


def urn_of(resource_type: str, name: str) -> str:
    return f"urn:pulumi:test::cloudrun-tasks::{resource_type}::{name}"


def _analyzer_props(props: Mapping[str, Any]) -> Any:
    """Properties as the analyzer hands them to a policy."""
    return unknown_checking_proxy(deserialize_properties(dict(props)))


def resource_args(
    resource_type: str, props: Mapping[str, Any], name: str = "r", *, protect: bool = False
) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource_type,
        _analyzer_props(props),
        urn_of(resource_type, name),
        name,
        options(protect=protect),
        None,
    )


def policy_resource(
    resource_type: str,
    props: Mapping[str, Any],
    name: str = "r",
    *,
    protect: bool = False,
    property_dependencies: Mapping[str, list[PolicyResource]] | None = None,
) -> PolicyResource:
    return PolicyResource(
        resource_type,
        _analyzer_props(props),
        urn_of(resource_type, name),
        name,
        options(protect=protect),
        None,
        None,
        [],
        dict(property_dependencies or {}),
    )


def validate(policy: Policy, args: ResourceValidationArgs | StackValidationArgs) -> list[str]:
    """Messages the policy reports. An UnknownValueError escaping it fails the test:
    in the real server that silently skips the policy."""
    messages: list[str] = []

    def report(message: str, urn: str | None = None) -> None:
        messages.append(message)

    if isinstance(policy, ResourceValidationPolicy) and isinstance(args, ResourceValidationArgs):
        policy.validate(args, report)
        return messages
    if isinstance(policy, StackValidationPolicy) and isinstance(args, StackValidationArgs):
        policy.validate(args, report)
        return messages
    raise TypeError(f"{policy.name} can't validate {type(args).__name__}")


def stack_config(stack: str) -> dict[str, Any]:
    """policy/config/<stack>.json, the file CI passes as --policy-pack-config."""
    return json.loads((POLICY_DIR / "config" / f"{stack}.json").read_text())


def _level(policy: Policy, config: Mapping[str, Any]) -> EnforcementLevel:
    entry = config.get(policy.name)
    if isinstance(entry, dict):
        entry = entry.get("enforcementLevel")
    if isinstance(entry, str):
        return EnforcementLevel(entry)
    return policy.enforcement_level or EnforcementLevel.ADVISORY


def _engine_props(values: Mapping[str, Any]) -> Any:
    """Recorded values as the analyzer receives them: engine sentinels for unknowns."""

    def convert(value: Any) -> Any:
        if value == recorder.UNKNOWN:
            return UNKNOWN
        if isinstance(value, Mapping):
            return {k: convert(v) for k, v in value.items()}
        if isinstance(value, list):
            return [convert(v) for v in value]
        return value

    return _analyzer_props(convert(dict(values)))


def evaluate(
    policies: Iterable[Policy], recording: Recording, config: Mapping[str, Any] | None = None
) -> list[Violation]:
    """Every violation the pack reports for a recorded program, as `pulumi preview` would:
    resource policies see each custom resource's inputs, stack policies all resources'
    outputs with parents and dependencies linked."""
    config = config or {}
    violations: list[Violation] = []
    custom = [r for r in recording.resources if r.custom]
    stack_resources = policy_resources(recording)
    for policy in policies:
        level = _level(policy, config)
        if level == EnforcementLevel.DISABLED:
            continue
        report = _reporter(violations, policy, level)
        try:
            if isinstance(policy, StackValidationPolicy):
                policy.validate(StackValidationArgs(stack_resources), report)
                continue
            assert isinstance(policy, ResourceValidationPolicy)
            for r in custom:
                args = ResourceValidationArgs(
                    r.type,
                    _engine_props(r.inputs),
                    r.urn,
                    r.name,
                    options(protect=r.protect, parent=r.parent),
                    None,
                )
                # As in the server: a resource policy's violations are the resource's.
                policy.validate(args, _reporter(violations, policy, level, r.urn))
        except UnknownValueError as error:  # the server would skip the policy silently
            raise AssertionError(
                f"{policy.name} touched an unknown value: {error.message}"
            ) from error
    return violations


def _reporter(
    into: list[Violation], policy: Policy, level: EnforcementLevel, urn: str | None = None
) -> Callable[[str, str | None], None]:
    def report(message: str, reported_urn: str | None = None) -> None:
        into.append(Violation(policy.name, level, message, urn or reported_urn))

    return report


def policy_resources(recording: Recording) -> list[PolicyResource]:
    """The recorded custom resources as AnalyzeStack hands them over: outputs, options,
    parents and (property) dependencies linked as objects."""
    custom = [r for r in recording.resources if r.custom]
    by_urn = {
        r.urn: PolicyResource(
            r.type,
            _engine_props(r.outputs),
            r.urn,
            r.name,
            options(protect=r.protect, parent=r.parent),
            None,
            None,
            [],
            {},
        )
        for r in custom
    }
    for r in custom:
        node = by_urn[r.urn]
        node.parent = by_urn.get(r.parent)
        node.dependencies = [by_urn[d] for d in r.dependencies if d in by_urn]
        node.property_dependencies = {
            key: [by_urn[d] for d in deps if d in by_urn]
            for key, deps in r.property_dependencies.items()
        }
    return list(by_urn.values())
