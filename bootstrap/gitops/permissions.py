"""What Google checks when Pulumi creates, updates, deletes and reads each resource type
the main program can register: the authority the pipeline's accounts must hold.

From Google's per-method permission documentation (the page beside each entry). The
provider reads a resource after each create and update and on `pulumi refresh` /
`preview --refresh`, so `read` is needed by both the deployer and the previewer. For the
`*IamMember` types a create, update or delete is a read-modify-write of the resource's
policy: getIamPolicy, then setIamPolicy. Long-running operations are polled with the
service's `operations.get`. tests/bootstrap/test_authority.py fails when the program
registers a type missing here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

ACT_AS: Final = "iam.serviceAccounts.actAs"


@dataclass(frozen=True)
class TypePermissions:
    create: frozenset[str]
    update: frozenset[str]
    delete: frozenset[str]
    read: frozenset[str]
    source: str
    """Google's page listing the permission each method needs."""

    @property
    def writes(self) -> frozenset[str]:
        return self.create | self.update | self.delete


def _perms(*names: str) -> frozenset[str]:
    return frozenset(names)


def _iam_member(service_collection: str, source: str) -> TypePermissions:
    get, set_ = f"{service_collection}.getIamPolicy", f"{service_collection}.setIamPolicy"
    change = _perms(get, set_)
    return TypePermissions(change, change, change, _perms(get), source)


RESOURCE_PERMISSIONS: Final[dict[str, TypePermissions]] = {
    # services.enable needs serviceusage.services.enable on the project (and
    # servicemanagement.services.bind on the service, which Google's public APIs grant to
    # every consumer); the provider waits on the returned operation (Service Usage's third
    # resource, "the long-running operation returned by certain methods") and reads
    # enabled services with services.list, after checking with Resource Manager's
    # projects.get that the project still exists (gitops/provider_reads.py). The program
    # never disables an API on destroy (disableOnDestroy false, a mandatory policy), so a
    # delete calls nothing.
    "gcp:projects/service:Service": TypePermissions(
        create=_perms("serviceusage.services.enable", "serviceusage.operations.get"),
        update=_perms(),
        delete=_perms(),
        read=_perms(
            "serviceusage.services.get",
            "serviceusage.services.list",
            "resourcemanager.projects.get",
        ),
        source="https://cloud.google.com/service-usage/docs/access-control",
    ),
    # "Triggering service agent creation doesn't require any IAM permissions"; waiting on
    # the operation services.generateServiceIdentity returns does. Update and delete are
    # no-ops in the provider, and it reads nothing back.
    "gcp:projects/serviceIdentity:ServiceIdentity": TypePermissions(
        create=_perms("serviceusage.operations.get"),
        update=_perms(),
        delete=_perms(),
        read=_perms(),
        source="https://cloud.google.com/iam/docs/create-service-agents",
    ),
    "gcp:serviceaccount/account:Account": TypePermissions(
        create=_perms("iam.serviceAccounts.create"),
        update=_perms("iam.serviceAccounts.update"),
        delete=_perms("iam.serviceAccounts.delete"),
        read=_perms("iam.serviceAccounts.get"),
        source="https://cloud.google.com/iam/docs/service-accounts-create",
    ),
    "gcp:serviceaccount/iAMMember:IAMMember": _iam_member(
        "iam.serviceAccounts",
        "https://cloud.google.com/iam/docs/manage-access-service-accounts",
    ),
    # The queue's httpTarget.oidcToken names an account Cloud Tasks mints tokens for:
    # setting it needs actAs on that account. desiredState PAUSED/RUNNING is applied with
    # queues.pause / queues.resume, on create as on update.
    "gcp:cloudtasks/queue:Queue": TypePermissions(
        create=_perms(
            "cloudtasks.queues.create",
            "cloudtasks.queues.pause",
            "cloudtasks.queues.resume",
            ACT_AS,
        ),
        update=_perms(
            "cloudtasks.queues.update",
            "cloudtasks.queues.pause",
            "cloudtasks.queues.resume",
            ACT_AS,
        ),
        delete=_perms("cloudtasks.queues.delete"),
        read=_perms("cloudtasks.queues.get"),
        source="https://cloud.google.com/tasks/docs/reference-access-control",
    ),
    "gcp:cloudtasks/queueIamMember:QueueIamMember": _iam_member(
        "cloudtasks.queues", "https://cloud.google.com/tasks/docs/reference-access-control"
    ),
    # Deploying a service that runs as an account needs actAs on it (Cloud Run "Configure
    # service identity", deployer account); create, update and delete return operations.
    "gcp:cloudrunv2/service:Service": TypePermissions(
        create=_perms("run.services.create", "run.operations.get", ACT_AS),
        update=_perms("run.services.update", "run.operations.get", ACT_AS),
        delete=_perms("run.services.delete", "run.operations.get"),
        read=_perms("run.services.get"),
        source="https://cloud.google.com/run/docs/reference/iam/permissions",
    ),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": _iam_member(
        "run.services", "https://cloud.google.com/run/docs/reference/iam/permissions"
    ),
    "gcp:secretmanager/secretIamMember:SecretIamMember": _iam_member(
        "secretmanager.secrets", "https://cloud.google.com/secret-manager/docs/access-control"
    ),
    "gcp:pubsub/topic:Topic": TypePermissions(
        create=_perms("pubsub.topics.create"),
        update=_perms("pubsub.topics.update"),
        delete=_perms("pubsub.topics.delete"),
        read=_perms("pubsub.topics.get"),
        source="https://cloud.google.com/pubsub/docs/access-control",
    ),
    # subscriptions.create: pubsub.subscriptions.create on the project and
    # pubsub.topics.attachSubscription on the topic.
    "gcp:pubsub/subscription:Subscription": TypePermissions(
        create=_perms("pubsub.subscriptions.create", "pubsub.topics.attachSubscription"),
        update=_perms("pubsub.subscriptions.update"),
        delete=_perms("pubsub.subscriptions.delete"),
        read=_perms("pubsub.subscriptions.get"),
        source="https://cloud.google.com/pubsub/docs/access-control",
    ),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": _iam_member(
        "pubsub.topics", "https://cloud.google.com/pubsub/docs/access-control"
    ),
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": _iam_member(
        "pubsub.subscriptions", "https://cloud.google.com/pubsub/docs/access-control"
    ),
    # Payload buckets (components/payloads.py). buckets.insert needs storage.buckets.create
    # (enableObjectRetention and setIpFilter only for buckets that set those, which these
    # don't); get and patch/update are what the provider calls to read and change one.
    "gcp:storage/bucket:Bucket": TypePermissions(
        create=_perms("storage.buckets.create"),
        update=_perms("storage.buckets.update"),
        delete=_perms("storage.buckets.delete"),
        read=_perms("storage.buckets.get"),
        source="https://cloud.google.com/storage/docs/access-control/iam-json",
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": _iam_member(
        "storage.buckets", "https://cloud.google.com/storage/docs/access-control/iam-json"
    ),
    # Project-level grants (the runtime's conditional datastore.user): the deployer's
    # projectIamAdmin is limited by an IAM condition to the roles the program grants.
    "gcp:projects/iAMMember:IAMMember": _iam_member(
        "resourcemanager.projects",
        "https://cloud.google.com/resource-manager/docs/access-control-proj",
    ),
    # Reading a database's configuration is datastore.databases.getMetadata: "in Cloud
    # Firestore, datastore.databases.get lets you begin or roll back a transaction. To
    # retrieve a database object's information, use datastore.databases.getMetadata"
    # (firebase.google.com/docs/firestore/security/iam). iam-dataset's gcp/map.json lists
    # datastore.databases.get beside update for projects.databases.patch; a patch begins
    # no transaction and the provider's update reads with GET (getMetadata), so the
    # deployer is not given the data-plane permission on that map's word alone. With
    # deletionPolicy ABANDON (protected stacks) a delete calls nothing.
    "gcp:firestore/database:Database": TypePermissions(
        create=_perms("datastore.databases.create", "datastore.operations.get"),
        update=_perms("datastore.databases.update", "datastore.operations.get"),
        delete=_perms("datastore.databases.delete"),
        read=_perms("datastore.databases.getMetadata"),
        source="https://cloud.google.com/datastore/docs/manage-databases",
    ),
    # The TTL field: the provider creates, updates and deletes (resets) it with
    # fields.patch, an operation, and reads it with fields.get. Google renamed the
    # datastore.indexes.* permissions these methods need to datastore.schemas.* (the
    # Firestore IAM page; iam-dataset's datastore.indexAdmin.json switched names in its
    # commit 4f1f2fe of 2026-03-01).
    "gcp:firestore/field:Field": TypePermissions(
        create=_perms("datastore.schemas.update", "datastore.operations.get"),
        update=_perms("datastore.schemas.update", "datastore.operations.get"),
        delete=_perms("datastore.schemas.update", "datastore.operations.get"),
        read=_perms("datastore.schemas.get"),
        source="https://firebase.google.com/docs/firestore/security/iam",
    ),
    "gcp:monitoring/alertPolicy:AlertPolicy": TypePermissions(
        create=_perms("monitoring.alertPolicies.create"),
        update=_perms("monitoring.alertPolicies.update"),
        delete=_perms("monitoring.alertPolicies.delete"),
        read=_perms("monitoring.alertPolicies.get"),
        source="https://cloud.google.com/monitoring/access-control",
    ),
    "gcp:monitoring/dashboard:Dashboard": TypePermissions(
        create=_perms("monitoring.dashboards.create"),
        update=_perms("monitoring.dashboards.update"),
        delete=_perms("monitoring.dashboards.delete"),
        read=_perms("monitoring.dashboards.get"),
        source="https://cloud.google.com/monitoring/access-control",
    ),
    "gcp:monitoring/notificationChannel:NotificationChannel": TypePermissions(
        create=_perms("monitoring.notificationChannels.create"),
        update=_perms("monitoring.notificationChannels.update"),
        delete=_perms("monitoring.notificationChannels.delete"),
        read=_perms("monitoring.notificationChannels.get"),
        source="https://cloud.google.com/monitoring/access-control",
    ),
    # An HTTP job's oidcToken account needs actAs, as a queue's does. The provider sends
    # no `paused` to the API (its encoder drops it): after jobs.create, and after a
    # jobs.patch that changes it, it calls jobs.pause or jobs.resume, which Google checks
    # as cloudscheduler.jobs.pause and cloudscheduler.jobs.enable.
    "gcp:cloudscheduler/job:Job": TypePermissions(
        create=_perms(
            "cloudscheduler.jobs.create",
            "cloudscheduler.jobs.pause",
            "cloudscheduler.jobs.enable",
            ACT_AS,
        ),
        update=_perms(
            "cloudscheduler.jobs.update",
            "cloudscheduler.jobs.pause",
            "cloudscheduler.jobs.enable",
            ACT_AS,
        ),
        delete=_perms("cloudscheduler.jobs.delete"),
        read=_perms("cloudscheduler.jobs.get"),
        source="https://cloud.google.com/scheduler/docs/access-control",
    ),
    # Logs-based metrics, every pipeline's claims-lost count (so every stack) and the
    # schedules' ticks: projects.metrics.create / update (PUT) / delete / get.
    "gcp:logging/metric:Metric": TypePermissions(
        create=_perms("logging.logMetrics.create"),
        update=_perms("logging.logMetrics.update"),
        delete=_perms("logging.logMetrics.delete"),
        read=_perms("logging.logMetrics.get"),
        source="https://cloud.google.com/logging/docs/access-control",
    ),
}

# Ready in the table but not granted yet: types the program does not register. Granting
# them early would give the deployer authority nothing uses; the change that adds such a
# type to the program removes it here (tests/bootstrap/test_authority.py fails until it
# does).
NOT_YET_GRANTED: Final[frozenset[str]] = frozenset()


def granted() -> dict[str, TypePermissions]:
    return {t: p for t, p in RESOURCE_PERMISSIONS.items() if t not in NOT_YET_GRANTED}


def deployer_needs() -> frozenset[str]:
    """Every permission `pulumi up` (and a refresh) may use on the granted types."""
    return frozenset().union(*(p.writes | p.read for p in granted().values()))


def previewer_needs() -> frozenset[str]:
    """Every permission `pulumi preview --refresh` uses: the reads."""
    return frozenset().union(*(p.read for p in granted().values()))
