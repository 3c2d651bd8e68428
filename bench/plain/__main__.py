"""Baseline for bench/scale.py: the real program's resources, registered flat.

No components, no settings validation, no defaults resolved by models: config goes
straight into the provider arguments. It exports the same stack output, since that is
the program's job too, not a cost of components. What the benchmark compares against,
to price what the components and the validation cost.

The alert queries, runbooks and dashboard JSON come from the same pure functions the
components call (components/observability.py, components/dashboard.py): building that
text is the resources' content, not a cost of components, and it can't be compared
input for input otherwise.
"""

import json
import math

import pulumi
import pulumi_gcp as gcp

from components import observability as q
from components.dashboard import RowInput, dashboard_layout

gcp_config = pulumi.Config("gcp")
config = pulumi.Config("cloudrun-tasks")
project = gcp_config.require("project")
region = gcp_config.require("region")
labels = config.get_object("labels") or {}
pipelines = config.require_object("pipelines")
alerting = config.get_object("alerts") or {}

apis = [
    gcp.projects.Service(
        f"apis-{api}",
        project=project,
        service=f"{api}.googleapis.com",
        disable_on_destroy=False,
        disable_dependent_services=False,
    )
    for api in ("cloudtasks", "run", "iam", "monitoring", "logging", "firestore", "pubsub")
]
agent = gcp.projects.ServiceIdentity(
    "apis-cloudtasks-agent",
    project=project,
    service="cloudtasks.googleapis.com",
    opts=pulumi.ResourceOptions(depends_on=[apis[0]]),
)
after_apis = pulumi.ResourceOptions(depends_on=[*apis, agent])
idempotency = config.get_object("idempotency") or {}
database = gcp.firestore.Database(
    "idempotency",
    project=project,
    name=idempotency.get("database", f"tasks-{pulumi.get_stack()}"),
    location_id=idempotency.get("location", region),
    type="FIRESTORE_NATIVE",
    delete_protection_state="DELETE_PROTECTION_DISABLED",
    deletion_policy="DELETE",
    opts=after_apis,
)
gcp.firestore.Field(
    "idempotency",
    project=project,
    database=database.name,
    collection="idempotency",
    field="updatedAt",
    ttl_config=gcp.firestore.FieldTtlConfigArgs(expiration_offset="2678400s"),
    index_config=gcp.firestore.FieldIndexConfigArgs(indexes=[]),
)
channels = [
    *alerting.get("notificationChannels", []),
    *(
        gcp.monitoring.NotificationChannel(
            f"alerts-email-{address}",
            project=project,
            type="email",
            display_name=f"cloudrun-tasks alerts: {address}",
            labels={"email_address": address},
            opts=after_apis,
        ).id
        for address in alerting.get("emails", [])
    ),
]
rows = []

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
        create_ignore_already_exists=True,
        opts=after_apis,
    )
    runtime = gcp.serviceaccount.Account(
        f"{name}-runtime",
        project=project,
        account_id=f"{name}-runtime",
        display_name=f"Cloud Run runtime of pipeline {name}",
        create_ignore_already_exists=True,
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
    topic = gcp.pubsub.Topic(
        f"{name}-dead-letters",
        project=project,
        labels={**labels, "pipeline": name},
        opts=after_apis,
    )
    subscription = gcp.pubsub.Subscription(
        f"{name}-dead-letters",
        project=project,
        topic=topic.name,
        labels={**labels, "pipeline": name},
        message_retention_duration="2678400s",
        retain_acked_messages=False,
        expiration_policy=gcp.pubsub.SubscriptionExpirationPolicyArgs(ttl=""),
        ack_deadline_seconds=60,
        opts=after_apis,
    )
    publish = gcp.pubsub.TopicIAMMember(
        f"{name}-dead-letters-pubsub-publisher-runtime",
        project=project,
        topic=topic.name,
        role="roles/pubsub.publisher",
        member=runtime.member,
    )
    store = gcp.projects.IAMMember(
        f"{name}-datastore-user-runtime",
        project=project,
        role="roles/datastore.user",
        member=runtime.member,
        condition=gcp.projects.IAMMemberConditionArgs(
            title=pulumi.Output.concat("idempotency database ", database.name, " only"),
            description=f"Runtime account of pipeline {name}: its idempotency records.",
            expression=pulumi.Output.concat(
                'resource.name == "projects/', project, "/databases/", database.name, '"'
            ),
        ),
        opts=after_apis,
    )
    topic_path = pulumi.Output.concat("projects/", project, "/topics/", topic.name)
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
                                "TASK_MAX_RETRY_DURATION": queue_settings.get(
                                    "maxRetryDuration", "3600s"
                                ),
                                "TASK_CONCURRENCY": str(concurrency),
                                "GOOGLE_CLOUD_PROJECT": project,
                                "TASK_FIRESTORE_DATABASE": database.name,
                                "TASK_DEAD_LETTER_TOPIC": topic_path,
                                "TASK_DISPATCH_DEADLINE": deadline,
                            }.items()
                        )
                    ],
                )
            ],
        ),
        opts=pulumi.ResourceOptions(depends_on=[*apis, agent, publish, store]),
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

    a = p.get("alerts", {})
    backlog, failing, capacity = (
        a.get("backlog", {}),
        a.get("failingAttempts", {}),
        a.get("capacity", {}),
    )
    threshold = backlog.get(
        "threshold", math.ceil(600 * queue_settings.get("maxDispatchesPerSecond", 10))
    )
    b_duration = backlog.get("duration", "300s")
    f_ratio, f_window = failing.get("ratio", 0.1), failing.get("window", "600s")
    f_duration = failing.get("duration", "300s")
    c_duration = capacity.get("duration", "900s")
    e_ratio, e_window = capacity.get("errorRatio", 0.05), capacity.get("errorWindow", "300s")
    l_window = a.get("claimsLost", {}).get("window", "900s")
    names = pulumi.Output.all(queue.name, service.name, subscription.name).apply(
        lambda v, name=name: q.PipelineNames(name, project, region, v[0], v[1], v[2])
    )
    claims_metric = gcp.logging.Metric(
        q.claims_lost_metric_name(name),
        project=project,
        name=q.claims_lost_metric_name(name),
        description=(
            f"Claims the handler of pipeline {name} lost to another delivery while its work"
            " ran (a task that may have run twice)."
        ),
        filter=service.name.apply(lambda s: q.claims_lost_log_filter(region, s)),
        metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
            metric_kind="DELTA", value_type="INT64", unit="1"
        ),
        opts=after_apis,
    )
    for kind, title, severity, conditions, runbook in (
        (
            "backlog",
            "queue backlog",
            "WARNING",
            [
                (
                    f"more than {threshold} tasks waiting for {b_duration}",
                    names.apply(lambda n, t=threshold: q.backlog_query(n, t)),
                    b_duration,
                )
            ],
            names.apply(lambda n, t=threshold, d=b_duration: q.backlog_runbook(n, t, d)),
        ),
        (
            "failing-attempts",
            "failing attempts",
            "ERROR",
            [
                (
                    f"over {f_ratio:.0%} of attempts non-OK over {f_window}",
                    names.apply(lambda n, r=f_ratio, w=f_window: q.failing_attempts_query(n, r, w)),
                    f_duration,
                )
            ],
            names.apply(lambda n, r=f_ratio, w=f_window: q.failing_attempts_runbook(n, r, w)),
        ),
        (
            "dead-letters",
            "dead letters waiting",
            "ERROR",
            [("a dead letter waits for a replay", names.apply(q.dead_letters_query), "0s")],
            names.apply(q.dead_letters_runbook),
        ),
        (
            "capacity",
            "service capacity",
            "WARNING",
            [
                (
                    f"at maxInstances ({max_instances}) for {c_duration}",
                    names.apply(lambda n, m=max_instances: q.at_max_instances_query(n, m)),
                    c_duration,
                ),
                (
                    f"over {e_ratio:.0%} 5xx over {e_window}",
                    names.apply(lambda n, r=e_ratio, w=e_window: q.server_errors_query(n, r, w)),
                    "0s",
                ),
            ],
            names.apply(
                lambda n, m=max_instances, r=e_ratio, w=e_window: q.capacity_runbook(n, m, r, w)
            ),
        ),
        (
            "claims-lost",
            "claims lost",
            "WARNING",
            [
                (
                    f"a claim was lost in the last {l_window}",
                    names.apply(lambda n, w=l_window: q.claims_lost_query(n, w)),
                    "0s",
                )
            ],
            names.apply(lambda n, w=l_window: q.claims_lost_runbook(n, w)),
        ),
    ):
        gcp.monitoring.AlertPolicy(
            f"{name}-{kind}",
            project=project,
            display_name=f"{name}: {title}",
            combiner="OR",
            enabled=a.get("enabled", True),
            severity=severity,
            notification_channels=channels,
            user_labels={"pipeline": name, "alert": kind},
            conditions=[
                gcp.monitoring.AlertPolicyConditionArgs(
                    display_name=condition,
                    condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                        query=query, duration=duration, evaluation_interval="60s"
                    ),
                )
                for condition, query, duration in conditions
            ],
            documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                subject=f"cloudrun-tasks {name}: {title}",
                content=runbook,
                mime_type="text/markdown",
            ),
            alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close="1800s"),
            opts=pulumi.ResourceOptions(
                depends_on=[*apis, agent, *([claims_metric] if kind == "claims-lost" else [])]
            ),
        )
    rows.append((names, max_instances))

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
        "deadLetterTopic": topic_path,
        "deadLetterSubscription": pulumi.Output.concat(
            "projects/", project, "/subscriptions/", subscription.name
        ),
        "firestoreDatabase": database.name,
    }

dashboard = gcp.monitoring.Dashboard(
    "dashboard",
    project=project,
    dashboard_json=pulumi.Output.all(*(names for names, _ in rows)).apply(
        lambda all_names: json.dumps(
            dashboard_layout(
                pulumi.get_stack(),
                [RowInput(n, m) for n, (_, m) in zip(all_names, rows, strict=True)],
            ).to_json(),
            sort_keys=True,
        )
    ),
    opts=after_apis,
)
pulumi.export("pipelines", exports)
pulumi.export("dashboardUrl", dashboard.id.apply(lambda id_: q.dashboard_url(project, id_)))
