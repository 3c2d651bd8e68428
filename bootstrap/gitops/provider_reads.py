"""What the Google provider's read of each resource type calls, so what a refresh
(`pulumi preview --refresh`, `pulumi refresh`) needs: read in terraform-provider-google-beta
(which pulumi-gcp bridges) at the tag plan/forcenew/table.json was generated from,
`google-beta/services/<file>`.

Each call is named by text that makes it in the function's source (the REST path template
of a generated resource, the client call of a handwritten one) and the permission Google
checks for it (the per-method pages cited in gitops/permissions.py). A call whose branch the
program never reaches says why instead of a permission. tests/bootstrap/test_provider_reads.py
reads the functions from a mirror of the provider's repository at that tag, fails when one
makes a call not listed here (or no longer makes a listed one), and checks that the
previewer's role holds every permission.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Final

PROVIDER_REPOSITORY: Final = "https://github.com/hashicorp/terraform-provider-google-beta"
PROVIDER_TAG: Final = "v7.45.0"


@dataclass(frozen=True)
class Call:
    marker: str
    """Text of the call (or its URL template) in the function's body."""
    permission: str | None
    unreached: str = ""
    """Why the program never makes this call (permission None)."""


@dataclass(frozen=True)
class ProviderRead:
    file: str
    """Under google-beta/services/."""
    calls: dict[str, tuple[Call, ...]] = field(default_factory=dict)
    """Function -> the API calls its body makes (SendRequest or a client's `.Do()`)."""
    helpers: tuple[Call, ...] = ()
    """Calls made through a helper function the read calls by name."""

    @property
    def permissions(self) -> frozenset[str]:
        every = [c for cs in self.calls.values() for c in cs] + list(self.helpers)
        return frozenset(c.permission for c in every if c.permission)


def _generated(file: str, function: str, path: str, permission: str) -> ProviderRead:
    """A generated (Magic Modules) resource: one GET of its REST path."""
    return ProviderRead(file, {function: (Call(path, permission),)})


def _iam(file: str, marker: str, permission: str) -> ProviderRead:
    """An *IamMember: tpgiamresource's member read calls the updater's GetResourceIamPolicy."""
    return ProviderRead(file, {"GetResourceIamPolicy": (Call(marker, permission),)})


PROVIDER_READS: Final[dict[str, ProviderRead]] = {
    # Checks that the project still exists (Resource Manager projects.get, only a 404
    # tolerated) before listing the enabled services in a batch.
    "gcp:projects/service:Service": ProviderRead(
        "resourcemanager/resource_google_project_service.go",
        {
            "resourceGoogleProjectServiceRead": (
                Call("Projects.Get(project)", "resourcemanager.projects.get"),
            )
        },
        helpers=(Call("BatchRequestReadServices(", "serviceusage.services.list"),),
    ),
    "gcp:projects/serviceIdentity:ServiceIdentity": ProviderRead(
        "resourcemanager/resource_project_service_identity.go",
        {"resourceProjectServiceIdentityRead": ()},
    ),
    "gcp:serviceaccount/account:Account": ProviderRead(
        "resourcemanager/resource_google_service_account.go",
        {
            "resourceGoogleServiceAccountRead": (
                Call("Projects.ServiceAccounts.Get(d.Id())", "iam.serviceAccounts.get"),
            )
        },
    ),
    "gcp:serviceaccount/iAMMember:IAMMember": _iam(
        "resourcemanager/iam_service_account.go",
        "Projects.ServiceAccounts.GetIamPolicy(",
        "iam.serviceAccounts.getIamPolicy",
    ),
    "gcp:cloudtasks/queue:Queue": _generated(
        "cloudtasks/resource_cloud_tasks_queue.go",
        "resourceCloudTasksQueueRead",
        '"projects/{{project}}/locations/{{location}}/queues/{{name}}"',
        "cloudtasks.queues.get",
    ),
    "gcp:cloudtasks/queueIamMember:QueueIamMember": _iam(
        "cloudtasks/iam_cloud_tasks_queue.go",
        'qualifyQueueUrl("getIamPolicy")',
        "cloudtasks.queues.getIamPolicy",
    ),
    "gcp:cloudrunv2/service:Service": _generated(
        "cloudrunv2/resource_cloud_run_v2_service.go",
        "resourceCloudRunV2ServiceRead",
        '"projects/{{project}}/locations/{{location}}/services/{{name}}"',
        "run.services.get",
    ),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": _iam(
        "cloudrunv2/iam_cloud_run_v2_service.go",
        'qualifyServiceUrl("getIamPolicy")',
        "run.services.getIamPolicy",
    ),
    "gcp:secretmanager/secretIamMember:SecretIamMember": _iam(
        "secretmanager/iam_secret_manager_secret.go",
        'qualifySecretUrl("getIamPolicy")',
        "secretmanager.secrets.getIamPolicy",
    ),
    "gcp:pubsub/topic:Topic": _generated(
        "pubsub/resource_pubsub_topic.go",
        "resourcePubsubTopicRead",
        '"projects/{{project}}/topics/{{name}}"',
        "pubsub.topics.get",
    ),
    "gcp:pubsub/subscription:Subscription": _generated(
        "pubsub/resource_pubsub_subscription.go",
        "resourcePubsubSubscriptionRead",
        '"projects/{{project}}/subscriptions/{{name}}"',
        "pubsub.subscriptions.get",
    ),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": _iam(
        "pubsub/iam_pubsub_topic.go",
        'qualifyTopicUrl("getIamPolicy")',
        "pubsub.topics.getIamPolicy",
    ),
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": _iam(
        "pubsub/iam_pubsub_subscription.go",
        "Projects.Subscriptions.GetIamPolicy(",
        "pubsub.subscriptions.getIamPolicy",
    ),
    # setStorageBucket looks the project up in Compute (projects.get by number) only when
    # the resource has no project; components/payloads.py always sets it.
    "gcp:storage/bucket:Bucket": ProviderRead(
        "storage/resource_storage_bucket.go",
        {
            "resourceStorageBucketRead": (Call("Buckets.Get(bucket)", "storage.buckets.get"),),
            "setStorageBucket": (
                Call(
                    'if d.Get("project") == ""',
                    None,
                    "the program sets every bucket's project",
                ),
            ),
        },
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": _iam(
        "storage/iam_storage_bucket.go",
        'qualifyBucketUrl("iam")',
        "storage.buckets.getIamPolicy",
    ),
    "gcp:projects/iAMMember:IAMMember": _iam(
        "resourcemanager/iam_project.go",
        "Projects.GetIamPolicy(",
        "resourcemanager.projects.getIamPolicy",
    ),
    # GET of the database: getMetadata in Firestore's terms (datastore.databases.get
    # begins or rolls back a transaction, the Firestore IAM page's note).
    "gcp:firestore/database:Database": _generated(
        "firestore/resource_firestore_database.go",
        "resourceFirestoreDatabaseRead",
        '"projects/{{project}}/databases/{{name}}"',
        "datastore.databases.getMetadata",
    ),
    "gcp:firestore/field:Field": _generated(
        "firestore/resource_firestore_field.go",
        "resourceFirestoreFieldRead",
        '+"{{name}}"',
        "datastore.schemas.get",
    ),
    "gcp:monitoring/alertPolicy:AlertPolicy": _generated(
        "monitoring/resource_monitoring_alert_policy.go",
        "resourceMonitoringAlertPolicyRead",
        '"v3/{{name}}"',
        "monitoring.alertPolicies.get",
    ),
    "gcp:monitoring/dashboard:Dashboard": _generated(
        "monitoring/resource_monitoring_dashboard.go",
        "resourceMonitoringDashboardRead",
        '"v1/" + d.Id()',
        "monitoring.dashboards.get",
    ),
    "gcp:monitoring/notificationChannel:NotificationChannel": _generated(
        "monitoring/resource_monitoring_notification_channel.go",
        "resourceMonitoringNotificationChannelRead",
        '"v3/{{name}}"',
        "monitoring.notificationChannels.get",
    ),
    "gcp:cloudscheduler/job:Job": _generated(
        "cloudscheduler/resource_cloud_scheduler_job.go",
        "resourceCloudSchedulerJobRead",
        '"projects/{{project}}/locations/{{region}}/jobs/{{name}}"',
        "cloudscheduler.jobs.get",
    ),
    "gcp:logging/metric:Metric": _generated(
        "logging/resource_logging_metric.go",
        "resourceLoggingMetricRead",
        '"projects/{{project}}/metrics/{{%name}}"',
        "logging.logMetrics.get",
    ),
}
