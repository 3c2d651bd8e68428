"""Builds the arguments pulumi-policy's analyzer server builds, for one policy at a time.

`PolicyPack(...)` starts a gRPC server and blocks, so tests call each policy's
`validate` with arguments built here or by offline.py (the pack's verdicts on a whole
recorded program, which the offline plan uses too).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pulumi_policy import (
    Policy,
    PolicyResource,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

from offline import (
    POLICY_DIR,
    UNKNOWN,
    Violation,
    analyzer_props,
    evaluate,
    options,
    policy_resources,
    stack_config,
)

__all__ = ["POLICY_DIR", "UNKNOWN", "Violation", "evaluate", "policy_resources", "stack_config"]

REPO = POLICY_DIR.parent


def urn_of(resource_type: str, name: str) -> str:
    return f"urn:pulumi:test::cloudrun-tasks::{resource_type}::{name}"


def resource_args(
    resource_type: str, props: Mapping[str, Any], name: str = "r", *, protect: bool = False
) -> ResourceValidationArgs:
    return ResourceValidationArgs(
        resource_type,
        analyzer_props(props),
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
        analyzer_props(props),
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
