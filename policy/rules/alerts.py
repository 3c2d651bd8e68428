"""Every queue is watched: its backlog and failing-attempts alerts exist and are enabled."""

from __future__ import annotations

from typing import Any, Final

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from rules.props import UNKNOWN, lookup
from rules.queues import QUEUE

ALERT_POLICY: Final = "gcp:monitoring/alertPolicy:AlertPolicy"
# The `alert` user label components/alerts.py puts on each policy.
REQUIRED: Final = ("backlog", "failing-attempts")


def _queries(policy: PolicyResource) -> list[Any]:
    queries = []
    index = 0
    while lookup(policy.props, "conditions", index) not in (None, UNKNOWN):
        queries.append(
            lookup(policy.props, "conditions", index, "conditionPrometheusQueryLanguage", "query")
        )
        index += 1
    return queries


def _watches(policy: PolicyResource, queue: PolicyResource) -> bool:
    """The policy's condition selects this queue: by its name in the query or, while the
    name is unknown (preview), by the query being built from the queue's outputs."""
    name = lookup(queue.props, "name")
    if isinstance(name, str):
        needle = f'queue_id="{name}"'
        if any(isinstance(q, str) and needle in q for q in _queries(policy)):
            return True
    depends = policy.property_dependencies.get("conditions", [])
    return any(d.urn == queue.urn for d in depends)


def _alerted(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    policies = [r for r in args.resources if r.resource_type == ALERT_POLICY]
    for queue in args.resources:
        if queue.resource_type != QUEUE:
            continue
        for kind in REQUIRED:
            watching = [
                p
                for p in policies
                if lookup(p.props, "userLabels", "alert") == kind and _watches(p, queue)
            ]
            enabled = [p for p in watching if lookup(p.props, "enabled") is not False]
            if enabled:
                continue
            state = "is disabled" if watching else "is missing"
            report_violation(
                f"Queue '{queue.name}' has no enabled {kind} alert: its {kind} alert policy"
                f" {state}, so nobody hears when it {'backs up' if kind == 'backlog' else 'fails'}."
                " Keep pipelines.<name>.alerts.enabled true (the default) in the stack file.",
                queue.urn,
            )


queue_alerts_present = StackValidationPolicy(
    name="queue-alerts-present",
    description=(
        "Every Cloud Tasks queue has enabled backlog and failing-attempts alert policies."
        " Mandatory in prod; advisory in dev and staging (policy/config/<stack>.json)."
    ),
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_alerted,
)
