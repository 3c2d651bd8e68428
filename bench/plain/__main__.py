"""Baseline for bench/scale.py: the real program's resources, registered flat.

No components, no settings validation, no defaults resolved by models: config goes
straight into the provider arguments. It exports the same stack output, since that is
the program's job too, not a cost of components. What the benchmark compares against,
to price what the components and the validation cost.
"""

import pulumi
import pulumi_gcp as gcp

gcp_config = pulumi.Config("gcp")
config = pulumi.Config("cloudrun-tasks")
project = gcp_config.require("project")
region = gcp_config.require("region")
labels = config.get_object("labels") or {}
pipelines = config.require_object("pipelines")

apis = [
    gcp.projects.Service(
        f"apis-{api}",
        project=project,
        service=f"{api}.googleapis.com",
        disable_on_destroy=False,
        disable_dependent_services=False,
    )
    for api in ("cloudtasks", "run", "iam")
]
agent = gcp.projects.ServiceIdentity(
    "apis-cloudtasks-agent",
    project=project,
    service="cloudtasks.googleapis.com",
    opts=pulumi.ResourceOptions(depends_on=[apis[0]]),
)
after_apis = pulumi.ResourceOptions(depends_on=[*apis, agent])

exports = {}
for name, p in pipelines.items():
    service_settings, queue_settings = p["service"], p.get("queue", {})
    deadline = p.get("dispatchDeadline", "600s")
    enqueuers = p.get("enqueuers", [])
    invoker = gcp.serviceaccount.Account(
        f"{name}-invoker",
        project=project,
        account_id=f"{name}-invoker",
        display_name=f"Cloud Tasks invoker of pipeline {name}",
        opts=after_apis,
    )
    runtime = gcp.serviceaccount.Account(
        f"{name}-runtime",
        project=project,
        account_id=f"{name}-runtime",
        display_name=f"Cloud Run runtime of pipeline {name}",
        opts=after_apis,
    )
    for member in enqueuers:
        gcp.serviceaccount.IAMMember(
            f"{name}-invoker-iam-serviceAccountUser-{member.replace(':', '-')}",
            service_account_id=invoker.name,
            role="roles/iam.serviceAccountUser",
            member=member,
        )
    gcp.serviceaccount.IAMMember(
        f"{name}-invoker-iam-serviceAccountOpenIdTokenCreator-cloudtasks-agent",
        service_account_id=invoker.name,
        role="roles/iam.serviceAccountOpenIdTokenCreator",
        member=agent.member,
    )
    max_instances = service_settings.get("maxInstances", 10)
    concurrency = service_settings.get("concurrency", 80)
    service = gcp.cloudrunv2.Service(
        name,
        project=project,
        location=region,
        ingress="INGRESS_TRAFFIC_INTERNAL_ONLY",
        invoker_iam_disabled=False,
        deletion_protection=False,
        labels={**labels, "pipeline": name},
        scaling=gcp.cloudrunv2.ServiceScalingArgs(min_instance_count=0),
        template=gcp.cloudrunv2.ServiceTemplateArgs(
            service_account=runtime.email,
            timeout=service_settings.get("timeout", deadline),
            max_instance_request_concurrency=concurrency,
            scaling=gcp.cloudrunv2.ServiceTemplateScalingArgs(
                min_instance_count=0, max_instance_count=max_instances
            ),
            containers=[
                gcp.cloudrunv2.ServiceTemplateContainerArgs(
                    image=service_settings["image"],
                    resources=gcp.cloudrunv2.ServiceTemplateContainerResourcesArgs(
                        limits={"cpu": "1", "memory": "512Mi"}
                    ),
                    envs=[
                        gcp.cloudrunv2.ServiceTemplateContainerEnvArgs(name=k, value=v)
                        for k, v in sorted(
                            {
                                **service_settings.get("env", {}),
                                "TASK_MAX_ATTEMPTS": str(queue_settings.get("maxAttempts", 20)),
                            }.items()
                        )
                    ],
                )
            ],
        ),
        opts=after_apis,
    )
    gcp.cloudrunv2.ServiceIamMember(
        f"{name}-run-invoker-invoker",
        project=project,
        location=service.location,
        name=service.name,
        role="roles/run.invoker",
        member=invoker.member,
    )
    queue = gcp.cloudtasks.Queue(
        name,
        project=project,
        location=region,
        desired_state="RUNNING",
        rate_limits=gcp.cloudtasks.QueueRateLimitsArgs(
            max_dispatches_per_second=queue_settings.get("maxDispatchesPerSecond", 10),
            max_concurrent_dispatches=min(max_instances * concurrency, 5000),
        ),
        retry_config=gcp.cloudtasks.QueueRetryConfigArgs(
            max_attempts=queue_settings.get("maxAttempts", 20),
            max_retry_duration=queue_settings.get("maxRetryDuration", "3600s"),
            min_backoff="1s",
            max_backoff="300s",
            max_doublings=5,
        ),
        stackdriver_logging_config=gcp.cloudtasks.QueueStackdriverLoggingConfigArgs(
            sampling_ratio=1.0
        ),
        http_target=gcp.cloudtasks.QueueHttpTargetArgs(
            uri_override=gcp.cloudtasks.QueueHttpTargetUriOverrideArgs(
                scheme="HTTPS",
                host=service.uri.apply(lambda url: url.removeprefix("https://")),
                uri_override_enforce_mode="ALWAYS",
            ),
            oidc_token=gcp.cloudtasks.QueueHttpTargetOidcTokenArgs(
                service_account_email=invoker.email, audience=service.uri
            ),
        ),
        opts=after_apis,
    )
    for member in enqueuers:
        gcp.cloudtasks.QueueIamMember(
            f"{name}-cloudtasks-enqueuer-{member.replace(':', '-')}",
            project=project,
            location=queue.location,
            name=queue.name,
            role="roles/cloudtasks.enqueuer",
            member=member,
        )

    exports[name] = {
        "queue": pulumi.Output.concat(
            "projects/", project, "/locations/", queue.location, "/queues/", queue.name
        ),
        "queueName": queue.name,
        "location": region,
        "serviceName": service.name,
        "serviceUrl": service.uri,
        "invokerServiceAccount": invoker.email,
        "runtimeServiceAccount": runtime.email,
        "dispatchDeadline": deadline,
    }

pulumi.export("pipelines", exports)
