"""The readable plan: component tree, key settings, IAM grants, outputs."""

from __future__ import annotations

from typing import Any

from plan import tree
from plan.document import resources
from plan.recorder import UNKNOWN
from tests.plan.conftest import DEV_RESOURCES

DEV_ENQUEUERS = (
    "serviceAccount:api@acme-tasks-dev.iam.gserviceaccount.com",
    "group:payments-devs@acme.example",
)


def test_every_resource_of_the_recording_is_in_the_tree(dev_plan: dict[str, Any]) -> None:
    text = tree.render(dev_plan)
    labels = [r.label for r in resources(dev_plan).values()]
    assert len(labels) == DEV_RESOURCES
    missing = [label for label in labels if f"─ {label}" not in text]
    assert missing == []


def test_tree_nests_resources_under_their_components(dev_plan: dict[str, Any]) -> None:
    lines = tree.render(dev_plan).splitlines()
    pipeline = lines.index("├─ TaskPipeline orders")
    queue_component = lines.index("│  ├─ TaskQueue orders")
    queue = lines.index("│  │  ├─ cloudtasks.Queue orders")
    assert pipeline < queue_component < queue
    assert "├─ ProjectApis apis" in lines
    assert "│  ├─ projects.Service apis-cloudtasks" in lines


def test_queue_and_service_settings(dev_plan: dict[str, Any]) -> None:
    text = tree.render(dev_plan)
    assert "rate: 5/s, at most 160 concurrent" in text
    assert "retries: 5 attempts within 600s, backoff 1s..300s (5 doublings)" in text
    assert "location us-central1, project acme-tasks-dev, state RUNNING" in text
    assert (
        "routes every task (ALWAYS) to HTTPS"
        f" {UNKNOWN} (from cloudrunv2.Service orders), OIDC token of"
        f" {UNKNOWN} (from serviceaccount.Account orders-invoker)"
    ) in text
    assert "image us-docker.pkg.dev/cloudrun/container/hello" in text
    assert "ingress INGRESS_TRAFFIC_INTERNAL_ONLY, timeout 600s, 80 requests per instance" in text
    assert "scaling: 0..2 instances, cpu 1, memory 512Mi" in text
    assert f"runs as {UNKNOWN} (from serviceaccount.Account orders-runtime)" in text
    assert (
        "env: GOOGLE_CLOUD_PROJECT, LOG_LEVEL, TASK_CONCURRENCY, TASK_DEAD_LETTER_TOPIC,"
        " TASK_DISPATCH_DEADLINE, TASK_FIRESTORE_DATABASE, TASK_MAX_ATTEMPTS,"
        " TASK_MAX_RETRY_DURATION, TASK_PAYLOAD_BUCKET, TASK_SCHEDULES;"
        " secrets: -"
    ) in text
    assert "deletion protection off" in text


def test_every_grant_reads_who_role_what(dev_plan: dict[str, Any]) -> None:
    lines = tree.render(dev_plan).splitlines()
    grants = ["grant: " + line.split("grant: ", 1)[1] for line in lines if "grant: " in line]
    expected = [
        *(
            f"grant: {m} -> roles/cloudtasks.enqueuer -> cloudtasks.Queue orders"
            for m in DEV_ENQUEUERS
        ),
        *(
            f"grant: {m} -> roles/iam.serviceAccountUser -> serviceaccount.Account orders-invoker"
            for m in DEV_ENQUEUERS
        ),
        f"grant: {UNKNOWN} (from projects.ServiceIdentity apis-cloudtasks-agent)"
        " -> roles/iam.serviceAccountOpenIdTokenCreator -> serviceaccount.Account orders-invoker",
        f"grant: {UNKNOWN} (from serviceaccount.Account orders-invoker)"
        " -> roles/run.invoker -> cloudrunv2.Service orders",
        # The dev stack's replayer consumes dead letters; it is an enqueuer already.
        "grant: group:payments-devs@acme.example -> roles/pubsub.subscriber"
        " -> pubsub.Subscription orders-dead-letters",
        f"grant: {UNKNOWN} (from serviceaccount.Account orders-runtime)"
        " -> roles/pubsub.publisher -> pubsub.Topic orders-dead-letters",
        f"grant: {UNKNOWN} (from serviceaccount.Account orders-runtime)"
        " -> roles/datastore.user -> project acme-tasks-dev",
        # The dev stack's schedule: its ticker invokes the service, the Cloud Scheduler agent
        # mints the ticker's tokens, the runtime account creates the ticks' tasks.
        f"grant: {UNKNOWN} (from serviceaccount.Account orders-ticker)"
        " -> roles/run.invoker -> cloudrunv2.Service orders",
        f"grant: {UNKNOWN} (from projects.ServiceIdentity apis-cloudscheduler-agent)"
        " -> roles/iam.serviceAccountOpenIdTokenCreator -> serviceaccount.Account orders-ticker",
        f"grant: {UNKNOWN} (from serviceaccount.Account orders-runtime)"
        " -> roles/cloudtasks.enqueuer -> cloudtasks.Queue orders",
        # thumbnails: one enqueuer, no replayer, no schedule; its app needs no grant of its
        # own (it runs as the service's runtime account).
        f"grant: {DEV_ENQUEUERS[0]} -> roles/cloudtasks.enqueuer -> cloudtasks.Queue thumbnails",
        f"grant: {DEV_ENQUEUERS[0]} -> roles/iam.serviceAccountUser"
        " -> serviceaccount.Account thumbnails-invoker",
        f"grant: {UNKNOWN} (from projects.ServiceIdentity apis-cloudtasks-agent)"
        " -> roles/iam.serviceAccountOpenIdTokenCreator -> serviceaccount.Account"
        " thumbnails-invoker",
        f"grant: {UNKNOWN} (from serviceaccount.Account thumbnails-invoker)"
        " -> roles/run.invoker -> cloudrunv2.Service thumbnails",
        f"grant: {UNKNOWN} (from serviceaccount.Account thumbnails-runtime)"
        " -> roles/pubsub.publisher -> pubsub.Topic thumbnails-dead-letters",
        f"grant: {UNKNOWN} (from serviceaccount.Account thumbnails-runtime)"
        " -> roles/datastore.user -> project acme-tasks-dev",
    ]
    assert sorted(grants) == sorted(expected)


def test_the_app_container_is_shown_with_its_probe(dev_plan: dict[str, Any]) -> None:
    text = tree.render(dev_plan)
    assert (
        "container app: image us-docker.pkg.dev/acme-tasks-dev/apps/thumbnails:dev, cpu 1,"
        " memory 512Mi, ready when TCP 8081 passes (the handler starts after it)"
    ) in text
    assert "container app env: LOG_LEVEL; secrets: -" in text
    # The handler in front of it carries the app's address.
    assert "TASK_APP_URL" in text


def test_protected_resources_are_marked(
    prod_plan: dict[str, Any], dev_plan: dict[str, Any]
) -> None:
    prod = tree.render(prod_plan)
    assert "cloudtasks.Queue orders [protected]" in prod
    assert "cloudrunv2.Service reports [protected]" in prod
    assert "deletion protection on" in prod
    assert "[protected]" not in tree.render(dev_plan)


def test_secrets_show_their_source_and_grant(prod_plan: dict[str, Any]) -> None:
    text = tree.render(prod_plan)
    assert (
        "env: GOOGLE_CLOUD_PROJECT, LOG_LEVEL, TASK_CONCURRENCY, TASK_DEAD_LETTER_TOPIC,"
        " TASK_DISPATCH_DEADLINE, TASK_FIRESTORE_DATABASE, TASK_MAX_ATTEMPTS,"
        " TASK_MAX_RETRY_DURATION;"
        " secrets: API_KEY<-orders-api-key:latest"
    ) in text
    assert (
        f"grant: {UNKNOWN} (from serviceaccount.Account orders-runtime)"
        " -> roles/secretmanager.secretAccessor -> secret orders-api-key"
    ) in text


def test_outputs_mark_unknowns(dev_plan: dict[str, Any]) -> None:
    text = tree.render(dev_plan)
    outputs = text.split("Stack outputs:\n", 1)[1]
    assert f"      serviceUrl: {UNKNOWN}\n" in outputs
    assert f"      invokerServiceAccount: {UNKNOWN}\n" in outputs
    assert '      dispatchDeadline: "600s"\n' in outputs


def test_known_outputs_print_as_values(dev_plan: dict[str, Any]) -> None:
    known = {**dev_plan, "outputs": {"pipelines": {"orders": {"location": "us-central1"}}}}
    assert '      location: "us-central1"' in tree.render(known)
