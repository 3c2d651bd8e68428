"""Cloud Tasks queues: retries that end."""

from __future__ import annotations

import re
from typing import Final

from pulumi_policy import (
    EnforcementLevel,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
)

from rules.props import UNKNOWN, lookup

QUEUE: Final = "gcp:cloudtasks/queue:Queue"
UNLIMITED_ATTEMPTS: Final = -1
_ZERO_DURATION: Final = re.compile(r"^0+(\.0*)?s?$")


def _unlimited_duration(value: object) -> bool:
    """Unset or zero: Cloud Tasks then puts no time limit on retries."""
    return (
        value is None
        or value == 0
        or (isinstance(value, str) and bool(_ZERO_DURATION.match(value)))
    )


def _bounded(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    if args.resource_type != QUEUE:
        return
    attempts = lookup(args.props, "retryConfig", "maxAttempts")
    duration = lookup(args.props, "retryConfig", "maxRetryDuration")
    if attempts is UNKNOWN or duration is UNKNOWN:
        return
    # Retries stop only once both limits are reached: -1 attempts with no time limit
    # retries a failing task until the task retention limit, hammering the service.
    if attempts == UNLIMITED_ATTEMPTS and _unlimited_duration(duration):
        report_violation(
            f"'{args.name}' retries failing tasks without end: retryConfig.maxAttempts is -1"
            f" (unlimited) and maxRetryDuration is {duration or 'unset'} (no time limit)."
            " Set maxAttempts to a number such as 20, or maxRetryDuration to a limit such"
            " as '3600s'.",
            None,
        )


queue_retries_bounded = ResourceValidationPolicy(
    name="queue-retries-bounded",
    description="Queue retries are bounded: not unlimited attempts with unlimited duration.",
    enforcement_level=EnforcementLevel.MANDATORY,
    validate=_bounded,
)
