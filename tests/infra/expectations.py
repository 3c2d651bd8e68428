"""What a correct recording must contain, as functions that raise AssertionError.

They are checked against every stack file and, in test_expectations.py, against
recordings with a resource or grant taken away, to prove each check can fail.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from plan.recorder import RecordedResource, Recording

QUEUE = "gcp:cloudtasks/queue:Queue"
QUEUE_MEMBER = "gcp:cloudtasks/queueIamMember:QueueIamMember"
SERVICE = "gcp:cloudrunv2/service:Service"
SERVICE_MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
ACCOUNT = "gcp:serviceaccount/account:Account"
ACCOUNT_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
TOPIC = "gcp:pubsub/topic:Topic"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
TOPIC_MEMBER = "gcp:pubsub/topicIAMMember:TopicIAMMember"
SUBSCRIPTION_MEMBER = "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
# A payload bucket's grants (objectCreator to task creators, objectViewer to the runtime
# account: tests/infra/test_payloads.py), on that bucket only.
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
DATABASE = "gcp:firestore/database:Database"
TTL_FIELD = "gcp:firestore/field:Field"
API = "gcp:projects/service:Service"
AGENT = "gcp:projects/serviceIdentity:ServiceIdentity"
PIPELINE = "cloudrun-tasks:index:TaskPipeline"
APIS = "cloudrun-tasks:index:ProjectApis"
SCHEDULES = "cloudrun-tasks:index:Schedules"
REQUIRED_APIS = {
    "cloudtasks.googleapis.com",
    "run.googleapis.com",
    "iam.googleapis.com",
    "firestore.googleapis.com",
    "pubsub.googleapis.com",
    # Every pipeline's claims-lost metric.
    "logging.googleapis.com",
}
DEAD_LETTER_RETENTION = "2678400s"  # 31 days, Pub/Sub's maximum for a subscription


def descendants(rec: Recording, root: RecordedResource) -> list[RecordedResource]:
    children = rec.children(root)
    return [d for child in children for d in (child, *descendants(rec, child))]


def _only(resources: list[RecordedResource], type_: str, what: str) -> RecordedResource:
    matches = [r for r in resources if r.type == type_]
    assert len(matches) == 1, f"{what}: expected one {type_}, found {len(matches)}"
    return matches[0]


def _grants(resources: list[RecordedResource], type_: str) -> set[tuple[str, str]]:
    return {(r.inputs["role"], r.inputs["member"]) for r in resources if r.type == type_}


def check_apis(rec: Recording) -> RecordedResource:
    """APIs enabled once, never disabled on destroy; the Cloud Tasks agent created."""
    component = _only(rec.resources, APIS, "project APIs")
    apis = [r for r in rec.resources if r.type == API]
    assert all(r.parent == component.urn for r in apis), "APIs must be children of ProjectApis"
    names = Counter(r.inputs["service"] for r in apis)
    assert not REQUIRED_APIS - set(names), f"missing APIs: {REQUIRED_APIS - set(names)}"
    assert all(n == 1 for n in names.values()), f"an API is enabled twice: {names}"
    for api in apis:
        assert api.inputs.get("disableOnDestroy") is False, f"{api.name}: disableOnDestroy"
        assert api.inputs.get("disableDependentServices") is False, f"{api.name}: dependents"
    # The Cloud Scheduler agent only with schedules (tests/infra/test_schedules.py).
    agents = [r for r in rec.resources if r.type == AGENT and r.name.endswith("-cloudtasks-agent")]
    agent = _only(agents, AGENT, "Cloud Tasks service agent")
    assert agent.inputs["service"] == "cloudtasks.googleapis.com"
    return component


def check_pipeline(
    rec: Recording,
    name: str,
    *,
    location: str,
    protect: bool,
    enqueuers: list[str],
    replayers: list[str] | None = None,
    secrets: dict[str, str] | None = None,
    exported: dict[str, Any] | None = None,
) -> None:
    """The full inventory and wiring of one pipeline, as the guide sets it up by hand.

    `exported` is the pipeline's output entry; by default the stack output `pipelines.NAME`.
    """
    apis = check_apis(rec)
    api_urns = {r.urn for r in rec.resources if r.type in (API, AGENT)}
    pipeline = next(r for r in rec.resources if r.type == PIPELINE and r.name == name)
    # A pipeline's schedules and their grants are checked by tests/infra/test_schedules.py.
    schedules = [r for r in rec.children(pipeline) if r.type == SCHEDULES]
    beside = {d.urn for s in schedules for d in (s, *descendants(rec, s))}
    inside = [r for r in descendants(rec, pipeline) if r.urn not in beside]
    project = rec.one(AGENT, f"{apis.name}-cloudtasks-agent").inputs["project"]

    queue = _only(inside, QUEUE, name)
    service = _only(inside, SERVICE, name)
    accounts = {r.inputs["accountId"]: r for r in inside if r.type == ACCOUNT}
    assert set(accounts) == {f"{name}-invoker", f"{name}-runtime"}, f"accounts: {set(accounts)}"
    invoker = accounts[f"{name}-invoker"].outputs["email"]
    runtime = accounts[f"{name}-runtime"].outputs["email"]
    agent = rec.one(AGENT, f"{apis.name}-cloudtasks-agent").outputs["email"]

    for resource in (queue, service, *accounts.values()):
        assert resource.inputs["project"] == project, f"{resource.name}: project"
        missing = api_urns - set(resource.dependencies)
        assert not missing, f"{resource.type} {resource.name} does not wait for {missing}"
        assert resource.protect is (protect and resource in (queue, service)), (
            f"{resource.type} {resource.name}: protect should be {protect}"
        )

    assert queue.inputs["location"] == service.inputs["location"] == location, "locations"
    assert service.inputs["deletionProtection"] is protect, "Cloud Run deletion protection"
    assert service.inputs["invokerIamDisabled"] is False, "service must require IAM"
    assert service.inputs["template"]["serviceAccount"] == runtime, "service runs as runtime SA"

    target = queue.inputs["httpTarget"]
    url = service.outputs["uri"]
    assert target["uriOverride"] == {
        "scheme": "HTTPS",
        "host": url.removeprefix("https://"),
        "uriOverrideEnforceMode": "ALWAYS",
    }, f"queue routing: {target['uriOverride']}"
    assert target["oidcToken"] == {"serviceAccountEmail": invoker, "audience": url}, "OIDC"

    invoker_member = f"serviceAccount:{invoker}"
    assert _grants(inside, SERVICE_MEMBER) == {("roles/run.invoker", invoker_member)}
    replayers = replayers or []
    creators = {*enqueuers, *replayers}
    assert _grants(inside, QUEUE_MEMBER) == {("roles/cloudtasks.enqueuer", m) for m in creators}
    assert _grants(inside, ACCOUNT_MEMBER) == {
        ("roles/iam.serviceAccountUser", m) for m in creators
    } | {("roles/iam.serviceAccountOpenIdTokenCreator", f"serviceAccount:{agent}")}
    for grant in (r for r in inside if r.type == ACCOUNT_MEMBER):
        assert grant.inputs["serviceAccountId"] == accounts[f"{name}-invoker"].outputs["name"], (
            f"{grant.name}: grants on the invoker account only"
        )
    for grant in (r for r in inside if r.type in (SERVICE_MEMBER, QUEUE_MEMBER)):
        target_resource = service if grant.type == SERVICE_MEMBER else queue
        assert grant.inputs["name"] == target_resource.outputs["name"], f"{grant.name}: scope"
        assert grant.inputs["location"] == location, f"{grant.name}: location"

    secret_ids = {ref.split(":")[0] for ref in (secrets or {}).values()}
    secret_grants = [r for r in inside if r.type == SECRET_MEMBER]
    assert {r.inputs["secretId"] for r in secret_grants} == secret_ids, "secret grants"
    for grant in secret_grants:
        assert grant.inputs["role"] == "roles/secretmanager.secretAccessor"
        assert grant.inputs["member"] == f"serviceAccount:{runtime}"
        assert grant.urn in service.dependencies, f"service must wait for {grant.name}"

    runtime_member = f"serviceAccount:{runtime}"
    topic = _only(inside, TOPIC, name)
    subscription = _only(inside, SUBSCRIPTION, name)
    for resource in (topic, subscription):
        assert resource.inputs["project"] == project, f"{resource.name}: project"
        assert not api_urns - set(resource.dependencies), f"{resource.name} must wait for APIs"
    assert subscription.inputs["topic"] == topic.outputs["name"], "subscription of its topic"
    assert subscription.inputs["messageRetentionDuration"] == DEAD_LETTER_RETENTION
    assert subscription.inputs["retainAckedMessages"] is False
    assert subscription.inputs["expirationPolicy"] == {"ttl": ""}, "never expires"
    assert "pushConfig" not in subscription.inputs, "a pull subscription"
    [publish] = [r for r in inside if r.type == TOPIC_MEMBER]
    assert (publish.inputs["role"], publish.inputs["member"]) == (
        "roles/pubsub.publisher",
        runtime_member,
    )
    assert publish.inputs["topic"] == topic.outputs["name"], "publish to its own topic only"
    assert _grants(inside, SUBSCRIPTION_MEMBER) == {
        ("roles/pubsub.subscriber", m) for m in replayers
    }
    for grant in (r for r in inside if r.type == SUBSCRIPTION_MEMBER):
        assert grant.inputs["subscription"] == subscription.outputs["name"], grant.name
    database = rec.one(DATABASE, "idempotency").inputs["name"]
    [store] = [r for r in inside if r.type == PROJECT_MEMBER]
    assert (store.inputs["role"], store.inputs["member"]) == (
        "roles/datastore.user",
        runtime_member,
    )
    assert store.inputs["condition"]["expression"] == (
        f'resource.name == "projects/{project}/databases/{database}"'
    ), "the runtime account's data access is this one database"
    assert rec.one(DATABASE, "idempotency").urn in store.dependencies
    for grant in (publish, store):
        assert grant.urn in service.dependencies, f"service must wait for {grant.name}"

    topic_path = f"projects/{project}/topics/{topic.outputs['name']}"
    # The handler's container is the first (the only one without an app).
    container = service.inputs["template"]["containers"][0]
    env = {e["name"]: e.get("value") for e in container["envs"]}
    assert {k: env[k] for k in PIPELINE_ENV} == {
        "TASK_FIRESTORE_DATABASE": database,
        "TASK_DEAD_LETTER_TOPIC": topic_path,
        "TASK_DISPATCH_DEADLINE": rec.outputs["pipelines"][name]["dispatchDeadline"]
        if exported is None
        else exported["dispatchDeadline"],
        "TASK_CONCURRENCY": str(int(service.inputs["template"]["maxInstanceRequestConcurrency"])),
        "GOOGLE_CLOUD_PROJECT": project,
        "TASK_MAX_ATTEMPTS": str(int(queue.inputs["retryConfig"]["maxAttempts"])),
        "TASK_MAX_RETRY_DURATION": queue.inputs["retryConfig"]["maxRetryDuration"],
    }

    expected = {
        "queue": f"projects/{project}/locations/{location}/queues/{queue.outputs['name']}",
        "queueName": queue.outputs["name"],
        "location": location,
        "serviceName": service.outputs["name"],
        "serviceUrl": url,
        "invokerServiceAccount": invoker,
        "runtimeServiceAccount": runtime,
        "deadLetterTopic": topic_path,
        "deadLetterSubscription": (
            f"projects/{project}/subscriptions/{subscription.outputs['name']}"
        ),
        "firestoreDatabase": database,
    }
    entry = rec.outputs["pipelines"][name] if exported is None else exported
    assert {k: entry[k] for k in expected} == expected, f"stack output of {name}"


PIPELINE_ENV = (
    "TASK_FIRESTORE_DATABASE",
    "TASK_DEAD_LETTER_TOPIC",
    "TASK_DISPATCH_DEADLINE",
    "TASK_CONCURRENCY",
    "GOOGLE_CLOUD_PROJECT",
    "TASK_MAX_ATTEMPTS",
    "TASK_MAX_RETRY_DURATION",
)
PUBLIC = {"allUsers", "allAuthenticatedUsers"}
MEMBER_TYPES = {
    QUEUE_MEMBER,
    SERVICE_MEMBER,
    ACCOUNT_MEMBER,
    SECRET_MEMBER,
    TOPIC_MEMBER,
    SUBSCRIPTION_MEMBER,
    PROJECT_MEMBER,
    BUCKET_MEMBER,
}


def security_violations(rec: Recording) -> list[str]:
    """The project's security model as data: an empty list means it holds."""
    problems: list[str] = []
    databases = {
        f"projects/{d.inputs['project']}/databases/{d.inputs['name']}"
        for d in rec.of_type(DATABASE)
    }
    for r in rec.resources:
        kind = r.type.rsplit(":", 1)[-1]
        if kind.endswith(("IamBinding", "IamPolicy", "IAMBinding", "IAMPolicy")):
            problems.append(f"{r.name}: authoritative IAM resource {r.type}")
        if r.type.startswith(("gcp:projects/iAM", "gcp:organizations/iAM")) and not (
            r.type == PROJECT_MEMBER and _one_database(r, databases)
        ):
            problems.append(f"{r.name}: project- or org-level IAM {r.type}")
        if r.type == "gcp:serviceaccount/key:Key":
            problems.append(f"{r.name}: service-account key")
        if r.custom and r.type.endswith(("IamMember", "IAMMember")) and r.type not in MEMBER_TYPES:
            problems.append(f"{r.name}: IAM on an unexpected resource type {r.type}")
        if r.type in MEMBER_TYPES and r.inputs.get("member") in PUBLIC:
            problems.append(f"{r.name}: public member {r.inputs['member']}")
    invokers = {r.outputs["email"] for r in rec.of_type(ACCOUNT) if r.name.endswith("-invoker")}
    for service in rec.of_type(SERVICE):
        account = service.inputs["template"].get("serviceAccount", "")
        if not account or account.endswith("-compute@developer.gserviceaccount.com"):
            problems.append(f"{service.name}: runs as the default compute account")
        if account in invokers:
            problems.append(f"{service.name}: runs as an invoker account")
    return problems


def _one_database(grant: RecordedResource, databases: set[str]) -> bool:
    """A project-level grant is allowed only as roles/datastore.user narrowed by its IAM
    condition to one of the stack's databases (Firestore has no database-level IAM)."""
    expression = (grant.inputs.get("condition") or {}).get("expression", "")
    return grant.inputs.get("role") == "roles/datastore.user" and expression in {
        f'resource.name == "{path}"' for path in databases
    }
