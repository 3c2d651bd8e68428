"""The private Cloud Run service that handles a pipeline's tasks."""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from .iam import IamMember, grant_all
from .names import secret_grant
from .settings import ServiceSettings
from .settings.app import HANDLER_PORT, AppSettings

INGRESS = {
    "internal": "INGRESS_TRAFFIC_INTERNAL_ONLY",
    "internal-and-cloud-load-balancing": "INGRESS_TRAFFIC_INTERNAL_LOAD_BALANCER",
    "all": "INGRESS_TRAFFIC_ALL",
}
SECRET_ACCESSOR = "roles/secretmanager.secretAccessor"
# Container names when the service has an app (DNS labels, google.cloud.run.v2.Container
# .name): stable, since dependsOns refers to them and a rename is a new revision.
HANDLER_CONTAINER = "handler"
APP_CONTAINER = "app"


@dataclass
class TaskServiceArgs:
    project: pulumi.Input[str]
    location: str
    settings: ServiceSettings
    """Validated service settings; timeout already resolved."""
    service_account: pulumi.Input[str]
    """Email of the dedicated runtime account (never the default compute account)."""
    max_attempts: int = -1
    """The queue's maxAttempts, given to the handler as TASK_MAX_ATTEMPTS so it can write
    a task to its dead-letter sink on the last attempt; -1 is unlimited."""
    pipeline_env: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    """Settings the pipeline gives the handler (TASK_FIRESTORE_DATABASE,
    TASK_DEAD_LETTER_TOPIC, TASK_DISPATCH_DEADLINE, TASK_MAX_RETRY_DURATION); names in
    settings.service.PIPELINE_ENV, which users can't set."""
    iam_members: Sequence[IamMember] = field(default_factory=tuple)
    """Grants on the service, e.g. roles/run.invoker for the queue's invoker account."""
    labels: Mapping[str, pulumi.Input[str]] = field(default_factory=dict)
    secret_env: bool = False
    """Env values came from a secret config key: each becomes a secret input, so state,
    previews and PR comments show [secret] (StackSettings.secret_env)."""
    secret_labels: bool = False
    protect: bool = False
    """Pulumi protect and Cloud Run deletion protection together."""
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)
    unaliased_secret_grants: frozenset[str] = frozenset()
    """Former secret-grant names no grant may alias (components.names.check_names)."""
    grants: Sequence[pulumi.Resource] = field(default_factory=tuple)
    """Grants to the runtime account its revisions need from their first request."""
    image: pulumi.Input[str] | None = None
    """The image when it came as an Output (settings.image holds a checked placeholder
    then: components/deferred.py)."""
    app_image: pulumi.Input[str] | None = None
    """The app's image when it came as an Output (settings.app.image is a placeholder)."""


def _envs(
    plain: Mapping[str, pulumi.Input[str]],
    user_keys: Collection[str],
    secrets: Mapping[str, str],
    secret_env: bool,
) -> list[gcp.cloudrunv2.ServiceTemplateContainerEnvArgs]:
    """PLAIN variables (those in USER_KEYS secret Outputs when SECRET_ENV), then SECRETS as
    Secret Manager references."""
    return [
        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
            name=key,
            value=pulumi.Output.secret(value) if secret_env and key in user_keys else value,
        )
        for key, value in sorted(plain.items())
    ] + [
        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(
            name=key,
            value_source=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceArgs(
                secret_key_ref=gcp.cloudrunv2.ServiceTemplateContainerEnvValueSourceSecretKeyRefArgs(
                    secret=ref.split(":")[0], version=ref.split(":")[1]
                )
            ),
        )
        for key, ref in sorted(secrets.items())
    ]


def _app_container(
    app: AppSettings, image: pulumi.Input[str] | None, secret_env: bool
) -> gcp.cloudrunv2.ServiceTemplateContainerArgs:
    """The team's container: a sidecar (no port), started first; the handler waits for its
    startup probe (TCP on its port, or an HTTP GET of probe.path)."""
    probe = app.startup_probe
    return gcp.cloudrunv2.ServiceTemplateContainerArgs(
        name=APP_CONTAINER,
        image=image if image is not None else app.image,
        resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
            limits={"cpu": app.cpu, "memory": app.memory},
        ),
        envs=_envs(app.env, app.env, app.secrets, secret_env),
        startup_probe=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeArgs(
            initial_delay_seconds=probe.initial_delay_seconds,
            period_seconds=probe.period_seconds,
            timeout_seconds=probe.timeout_seconds,
            failure_threshold=probe.failure_threshold,
            http_get=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeHttpGetArgs(
                path=probe.path, port=app.port
            )
            if probe.path is not None
            else None,
            tcp_socket=gcp.cloudrunv2.ServiceTemplateContainerStartupProbeTcpSocketArgs(
                port=app.port
            )
            if probe.path is None
            else None,
        ),
    )


class TaskService(pulumi.ComponentResource):
    """A Cloud Run v2 service only IAM-authorised callers can invoke.

    Secrets become environment variables; the runtime account may read those secrets
    and nothing else in Secret Manager.
    """

    service_name: pulumi.Output[str]
    url: pulumi.Output[str]
    location: pulumi.Output[str]

    def __init__(
        self, name: str, args: TaskServiceArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:TaskService", name, None, opts)
        s = args.settings
        secret_grants = [
            gcp.secretmanager.SecretIamMember(
                grant.name,
                project=args.project,
                secret_id=secret_id,
                role=SECRET_ACCESSOR,
                member=pulumi.Output.concat("serviceAccount:", args.service_account),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=list(args.depends_on),
                    aliases=grant.aliases(args.unaliased_secret_grants),
                ),
            )
            for secret_id in sorted({ref.split(":")[0] for ref in _secret_refs(s)})
            for grant in [secret_grant(name, secret_id)]
        ]
        # TASK_CONCURRENCY: the handler runs as many threads as Cloud Run sends requests.
        plain_env: dict[str, pulumi.Input[str]] = {
            **s.env,
            "TASK_MAX_ATTEMPTS": str(args.max_attempts),
            "TASK_CONCURRENCY": str(s.concurrency),
            "GOOGLE_CLOUD_PROJECT": args.project,
            **args.pipeline_env,
        }
        if s.app is not None:
            # The handler's proxy mode: it forwards each claimed task to the app.
            plain_env["TASK_APP_URL"] = f"http://localhost:{s.app.port}"
        # With an app, the handler is the ingress container: the one with a port, started
        # after the app's startup probe passed (Cloud Run container contract).
        sidecar = s.app is not None
        handler = gcp.cloudrunv2.ServiceTemplateContainerArgs(
            name=HANDLER_CONTAINER if sidecar else None,
            image=args.image if args.image is not None else s.image,
            resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                limits={"cpu": s.cpu, "memory": s.memory},
            ),
            envs=_envs(plain_env, s.env, s.secrets, args.secret_env),
            ports=gcp.cloudrunv2.ServiceTemplateContainerPortsArgs(container_port=HANDLER_PORT)
            if sidecar
            else None,
            depends_ons=[APP_CONTAINER] if sidecar else None,
        )
        containers = [handler]
        if s.app is not None:
            containers.append(_app_container(s.app, args.app_image, args.secret_env))
        service = gcp.cloudrunv2.Service(
            name,
            project=args.project,
            location=args.location,
            ingress=INGRESS[s.ingress],
            invoker_iam_disabled=False,
            deletion_protection=args.protect,
            labels=pulumi.Output.secret(dict(args.labels))
            if args.secret_labels
            else dict(args.labels),
            # Declared explicitly (not left to the API's default) to avoid perpetual diffs;
            # launch_stage is deliberately not set for the same reason.
            scaling=gcp.cloudrunv2.ServiceScalingArgs(min_instance_count=s.min_instances),
            template=gcp.cloudrunv2.ServiceTemplateArgs(
                service_account=args.service_account,
                timeout=str(s.resolved_timeout),
                max_instance_request_concurrency=s.concurrency,
                scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                    min_instance_count=s.min_instances,
                    max_instance_count=s.max_instances,
                ),
                containers=containers,
            ),
            # A revision that reads a secret fails to start until its accessor grant exists.
            opts=pulumi.ResourceOptions(
                parent=self,
                protect=args.protect,
                depends_on=[*args.depends_on, *secret_grants, *args.grants],
            ),
        )
        grant_all(
            name,
            args.iam_members,
            lambda grant_name, grant, aliases: gcp.cloudrunv2.ServiceIamMember(
                grant_name,
                project=args.project,
                location=service.location,
                name=service.name,
                role=grant.role,
                member=grant.member,
                opts=pulumi.ResourceOptions(parent=self, aliases=aliases),
            ),
        )
        self.service_name = service.name
        self.url = service.uri
        self.location = service.location
        self.register_outputs(
            {"serviceName": self.service_name, "url": self.url, "location": self.location}
        )


def _secret_refs(s: ServiceSettings) -> Iterator[str]:
    """Every SECRET:VERSION either container reads."""
    yield from s.secrets.values()
    if s.app is not None:
        yield from s.app.secrets.values()
