"""Stack-wide checks on each queue and the Cloud Run service it routes tasks to."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final
from urllib.parse import urlparse

from pulumi_policy import (
    EnforcementLevel,
    PolicyResource,
    ReportViolation,
    StackValidationArgs,
    StackValidationPolicy,
)

from rules.cloudrun import SERVICE_V2
from rules.props import UNKNOWN, known_number, known_str, lookup
from rules.queues import QUEUE

# What Cloud Tasks and Cloud Run use when the fields are unset.
DEFAULT_MAX_CONCURRENT_DISPATCHES: Final = 1000
DEFAULT_MAX_INSTANCES: Final = 100
DEFAULT_CONCURRENCY: Final = 80


def queue_targets(
    resources: list[PolicyResource],
) -> Iterator[tuple[PolicyResource, PolicyResource]]:
    """(queue, service) for each queue whose httpTarget routes to a Cloud Run service.

    The link is the httpTarget's dependency on the service (known even in preview,
    when the service's URL is not), or else the override host matching the URL.
    """
    services = [r for r in resources if r.resource_type == SERVICE_V2]
    for queue in (r for r in resources if r.resource_type == QUEUE):
        linked = [
            d
            for d in queue.property_dependencies.get("httpTarget", [])
            if d.resource_type == SERVICE_V2
        ]
        if not linked:
            host = known_str(queue.props, "httpTarget", "uriOverride", "host")
            linked = [
                s
                for s in services
                if host and urlparse(known_str(s.props, "uri") or "").hostname == host
            ]
        for service in linked:
            yield queue, service


def _same_location(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for queue, service in queue_targets(args.resources):
        queue_location = known_str(queue.props, "location")
        service_location = known_str(service.props, "location")
        if queue_location and service_location and queue_location != service_location:
            report_violation(
                f"Queue '{queue.name}' is in {queue_location} but routes to Cloud Run service"
                f" '{service.name}' in {service_location}. Put the queue in {service_location}"
                " (the guide requires the same location; a cross-region hop adds latency and"
                " a second region's outage to every task).",
                queue.urn,
            )


def _count(props: object, path: tuple[str, ...], default: int) -> float | None:
    """A known count, the API default when unset, None when unknown."""
    value = lookup(props, *path)
    if value is None:
        return default
    if value is UNKNOWN:
        return None
    return known_number(props, *path)


def _within_capacity(args: StackValidationArgs, report_violation: ReportViolation) -> None:
    for queue, service in queue_targets(args.resources):
        dispatches = _count(
            queue.props,
            ("rateLimits", "maxConcurrentDispatches"),
            DEFAULT_MAX_CONCURRENT_DISPATCHES,
        )
        instances = _count(
            service.props, ("template", "scaling", "maxInstanceCount"), DEFAULT_MAX_INSTANCES
        )
        concurrency = _count(
            service.props, ("template", "maxInstanceRequestConcurrency"), DEFAULT_CONCURRENCY
        )
        if dispatches is None or instances is None or concurrency is None:
            continue
        capacity = instances * concurrency
        if dispatches > capacity:
            report_violation(
                f"Queue '{queue.name}' may hold {dispatches:g} tasks in flight but service"
                f" '{service.name}' takes at most {capacity:g} requests at once"
                f" ({instances:g} instances x {concurrency:g} concurrency): the excess is"
                " rejected with 429 and retried. Lower rateLimits.maxConcurrentDispatches"
                f" to {capacity:g} or raise the service's maxInstanceCount.",
                queue.urn,
            )


queue_and_service_same_location = StackValidationPolicy(
    name="queue-and-service-same-location",
    description="Each queue is in the same location as the Cloud Run service it targets.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_same_location,
)

queue_within_service_capacity = StackValidationPolicy(
    name="queue-within-service-capacity",
    description="Advisory: a queue dispatches no more at once than its service can take.",
    enforcement_level=EnforcementLevel.ADVISORY,
    validate=_within_capacity,
)
