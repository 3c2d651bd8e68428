"""The Cloud Tasks queue: rate and retry limits, and queue-level routing to its service."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlparse

import pulumi
import pulumi_gcp as gcp

from .iam import IamMember, grant_all
from .settings import QueueSettings


@dataclass
class TaskQueueArgs:
    project: pulumi.Input[str]
    location: str
    """Must be the location of the target service (one pipeline, one location)."""
    settings: QueueSettings
    """Validated rate and retry limits; max_concurrent_dispatches already resolved."""
    target_url: pulumi.Input[str]
    """Base URL of the service every task is routed to; also the OIDC audience."""
    invoker_email: pulumi.Input[str]
    """Account whose OIDC token Cloud Tasks attaches to every task."""
    iam_members: Sequence[IamMember] = field(default_factory=tuple)
    """Grants on the queue, e.g. roles/cloudtasks.enqueuer for the callers."""
    protect: bool = False
    """Pulumi protect: a deleted queue's name is blocked for days."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class TaskQueue(pulumi.ComponentResource):
    """A Cloud Tasks queue whose every task goes to one service with an OIDC token.

    The queue name is left to Pulumi's auto-naming: a replacement then creates a queue
    under a fresh name before deleting the old one, instead of colliding with the old
    name's deletion tombstone (Cloud Tasks blocks a deleted queue's name for days).
    """

    path: pulumi.Output[str]
    """projects/P/locations/L/queues/Q, what CreateTask takes as parent."""
    queue_name: pulumi.Output[str]
    location: pulumi.Output[str]

    def __init__(
        self, name: str, args: TaskQueueArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:TaskQueue", name, None, opts)
        s = args.settings
        queue = gcp.cloudtasks.Queue(
            name,
            project=args.project,
            location=args.location,
            desired_state="PAUSED" if s.paused else "RUNNING",
            # max_burst_size is output-only: setting it fails.
            rate_limits=gcp.cloudtasks.QueueRateLimitsArgs(
                max_dispatches_per_second=s.max_dispatches_per_second,
                max_concurrent_dispatches=s.max_concurrent_dispatches,
            ),
            retry_config=gcp.cloudtasks.QueueRetryConfigArgs(
                max_attempts=s.max_attempts,
                max_retry_duration=str(s.max_retry_duration),
                min_backoff=str(s.min_backoff),
                max_backoff=str(s.max_backoff),
                max_doublings=s.max_doublings,
            ),
            stackdriver_logging_config=gcp.cloudtasks.QueueStackdriverLoggingConfigArgs(
                sampling_ratio=s.logging_sampling_ratio,
            ),
            # ALWAYS: whatever URL or token an enqueuer sends, the task goes to this
            # service with the invoker's token; the task's own path is kept.
            http_target=gcp.cloudtasks.QueueHttpTargetArgs(
                uri_override=gcp.cloudtasks.QueueHttpTargetUriOverrideArgs(
                    scheme="HTTPS",
                    host=pulumi.Output.from_input(args.target_url).apply(
                        lambda url: urlparse(url).hostname or url
                    ),
                    uri_override_enforce_mode="ALWAYS",
                ),
                # The audience is the service's base URL, not the task URL: a path or
                # query string in the audience makes Cloud Run answer 401.
                oidc_token=gcp.cloudtasks.QueueHttpTargetOidcTokenArgs(
                    service_account_email=args.invoker_email,
                    audience=args.target_url,
                ),
            ),
            opts=pulumi.ResourceOptions(
                parent=self, protect=args.protect, depends_on=list(args.depends_on)
            ),
        )
        grant_all(
            name,
            args.iam_members,
            lambda grant_name, grant, aliases: gcp.cloudtasks.QueueIamMember(
                grant_name,
                project=args.project,
                location=queue.location,
                name=queue.name,
                role=grant.role,
                member=grant.member,
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            ),
        )
        self.queue_name = queue.name
        self.location = queue.location
        self.path = pulumi.Output.concat(
            "projects/", args.project, "/locations/", queue.location, "/queues/", queue.name
        )
        self.register_outputs(
            {"path": self.path, "queueName": self.queue_name, "location": self.location}
        )
