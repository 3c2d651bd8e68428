"""The pack's verdicts on a recorded program, the way pulumi-policy's analyzer gives them.

`PolicyPack(...)` starts a gRPC server and blocks, so this calls each policy's `validate`
with the arguments the server would build: properties wrapped in the same unknown-
checking proxy, unknowns as the engine's sentinels, enforcement levels from the same
per-stack config files CI passes with `--policy-pack-config`. The policy tests use it,
and so does the offline plan (`python -m plan`), which runs this file in .venv-policy
(pulumi-policy pins protobuf 5) on a recording it writes as JSON:

    ../.venv-policy/bin/python offline.py --stack prod < recording.json
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass
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
from plan.recorder import RecordedResource, Recording

POLICY_DIR = Path(__file__).resolve().parent
PACK = "cloudrun-tasks-guardrails"
# A stand-in for any unknown value; the proxy treats every sentinel alike.
UNKNOWN = UNKNOWN_STRING_VALUE


class PolicySkipped(RuntimeError):
    """A policy read a value unknown offline: the real server would skip it silently."""


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


def analyzer_props(props: Mapping[str, Any]) -> Any:
    """Properties as the analyzer hands them to a policy."""
    return unknown_checking_proxy(deserialize_properties(dict(props)))


def stack_config(stack: str) -> dict[str, Any]:
    """policy/config/<stack>.json, the file CI passes as --policy-pack-config; a stack
    without one gets every policy at its own (default) level."""
    path = POLICY_DIR / "config" / f"{stack}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


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

    return analyzer_props(convert(dict(values)))


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
        except UnknownValueError as error:
            raise PolicySkipped(
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


def recording_from_json(data: Mapping[str, Any]) -> Recording:
    """The inverse of `dataclasses.asdict(recording)` (what the plan writes)."""
    return Recording(
        project=data["project"],
        stack=data["stack"],
        resources=[
            RecordedResource(
                **{
                    **r,
                    "dependencies": tuple(r["dependencies"]),
                    "aliases": tuple(r["aliases"]),
                    "property_dependencies": {
                        k: tuple(v) for k, v in r["property_dependencies"].items()
                    },
                }
            )
            for r in data["resources"]
        ],
        outputs=data["outputs"],
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The pack's verdicts on a recording (stdin).")
    parser.add_argument("--stack", required=True, help="reads policy/config/STACK.json")
    args = parser.parse_args(argv)
    from policies import POLICIES  # the pack's modules import each other from policy/

    recording = recording_from_json(json.load(sys.stdin))
    try:
        violations = evaluate(POLICIES, recording, stack_config(args.stack))
    except PolicySkipped as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    json.dump([{**asdict(v), "level": v.level.value} for v in violations], sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
