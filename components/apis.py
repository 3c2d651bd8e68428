"""The project's Google APIs, enabled once per stack, and the Cloud Tasks service agent."""

from collections.abc import Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

CLOUDTASKS = "cloudtasks.googleapis.com"
FIRESTORE = "firestore.googleapis.com"
PUBSUB = "pubsub.googleapis.com"
LOGGING = "logging.googleapis.com"
# Monitoring: every pipeline deploys with its alert policies (and the stack its dashboard).
# Logging: every pipeline's logs-based claims-lost metric (projects.metrics.create), and
# the schedules' tick metric. Firestore: the stack's idempotency store. Pub/Sub: every
# pipeline's dead letters.
REQUIRED_SERVICES = (
    CLOUDTASKS,
    "run.googleapis.com",
    "iam.googleapis.com",
    "monitoring.googleapis.com",
    LOGGING,
    FIRESTORE,
    PUBSUB,
)
SECRET_MANAGER = "secretmanager.googleapis.com"
# Only for stacks with schedules (components/schedule.py): the jobs.
CLOUDSCHEDULER = "cloudscheduler.googleapis.com"


@dataclass
class ProjectApisArgs:
    project: pulumi.Input[str]
    """Project the APIs are enabled in."""
    extra_services: Sequence[str] = field(default_factory=tuple)
    """APIs beyond REQUIRED_SERVICES, e.g. Secret Manager when a pipeline reads secrets.
    With CLOUDSCHEDULER, its service agent is created too."""


class ProjectApis(pulumi.ComponentResource):
    """Enables the APIs a pipeline needs and creates the Cloud Tasks service agent.

    Destroying a stack must never switch an API off for the whole project (other stacks
    and workloads use it), so nothing here disables anything on destroy. Every resource
    that calls an API depends on this component (`depends_on=[apis]`): a freshly enabled
    API can answer "not enabled" for a while.
    """

    services: dict[str, gcp.projects.Service]
    cloudtasks_agent_member: pulumi.Output[str]
    """`serviceAccount:EMAIL` of the Cloud Tasks service agent, which mints the OIDC
    tokens of pushed tasks."""
    cloudscheduler_agent_member: pulumi.Output[str] | None
    """The Cloud Scheduler service agent, which mints the OIDC tokens of schedule ticks;
    None unless CLOUDSCHEDULER is among the services."""

    def __init__(
        self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:ProjectApis", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.services = {
            service: gcp.projects.Service(
                f"{name}-{service.split('.')[0]}",
                project=args.project,
                service=service,
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=child,
            )
            for service in dict.fromkeys([*REQUIRED_SERVICES, *args.extra_services])
        }
        # The agent is created lazily by Google; creating it explicitly lets the OIDC grant
        # on the invoker account succeed on a fresh project.
        agent = gcp.projects.ServiceIdentity(
            f"{name}-cloudtasks-agent",
            project=args.project,
            service=CLOUDTASKS,
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.services[CLOUDTASKS]]),
        )
        self.cloudtasks_agent_member = agent.member
        self.cloudscheduler_agent_member = None
        if CLOUDSCHEDULER in self.services:
            self.cloudscheduler_agent_member = gcp.projects.ServiceIdentity(
                f"{name}-cloudscheduler-agent",
                project=args.project,
                service=CLOUDSCHEDULER,
                opts=pulumi.ResourceOptions(
                    parent=self, depends_on=[self.services[CLOUDSCHEDULER]]
                ),
            ).member
        self.register_outputs(
            {
                "services": list(self.services),
                "cloudtasksAgentMember": self.cloudtasks_agent_member,
                "cloudschedulerAgentMember": self.cloudscheduler_agent_member,
            }
        )
