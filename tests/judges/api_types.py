"""Each recorded resource as the API message Google receives, parsed by Google's own types.

The provider (pulumi-gcp over terraform-provider-google) sends the API nearly what it was
given, in the API's own JSON field names. Where it does not, the difference is in TABLE,
one entry per resource type, and nowhere else:

- `name`: how the API names the resource, from the inputs the provider builds it from
  (project, location, the auto-generated name); those inputs are then dropped;
- `renamed`: a provider input whose API field is spelled otherwise (`envs` -> `env`,
  `desiredState` -> `state`); a dotted path, `[]` for each element of a list;
- `dropped`: provider-only inputs the API never sees (`deletionProtection`,
  `deletionPolicy`, the `disableOn*` destroy switches, the parent a grant is on);
- `emptied`: inputs whose empty string the provider sends as an absent field
  (Subscription.expirationPolicy.ttl "": the provider's docs say the subscription then
  never expires, which the API spells as an ExpirationPolicy without ttl, "If ttl is not
  set, the associated resource never expires": google.pubsub.v1.ExpirationPolicy.ttl);
- `wrap`: where the provider calls a method rather than writing a resource: the request
  or policy message that carries the inputs (a service account is created by
  CreateServiceAccountRequest; an `*IamMember` adds one binding to an IAM Policy), or
  where an input is applied by a method of its own (a job's `paused`: jobs.pause or
  jobs.resume after the create, which leave the job's `state` PAUSED or ENABLED).

The messages come from Google's client libraries (dev lock only): google-cloud-run,
-monitoring, -monitoring-dashboards, -iam, -service-usage, -tasks, -pubsub, -firestore,
-scheduler (google.cloud.scheduler.v1.Job) and -logging (google.logging.v2.LogMetric, the
proto-plus class in google.cloud.logging_v2.types: the one PyPI package that ships the
message; googleapis-common-protos has only google.logging.type).

`json_format.ParseDict(..., ignore_unknown_fields=False)` then refuses any field the
message does not have, a string where an enum or a Duration goes (`15m` is not a
Duration: the JSON form is `900s`), an unknown enum value and a non-integral integer.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from google.cloud import (
    iam_admin_v1,
    monitoring_dashboard_v1,
    monitoring_v3,
    run_v2,
    scheduler_v1,
    service_usage_v1,
    tasks_v2,
)
from google.cloud._storage_v2.types import storage as storage_v2
from google.cloud.firestore_admin_v1.types import database as firestore_database
from google.cloud.firestore_admin_v1.types import field as firestore_field
from google.cloud.logging_v2.types import logging_metrics
from google.iam.v1 import policy_pb2
from google.protobuf import json_format
from google.protobuf.message import Message
from google.pubsub_v1 import types as pubsub_v1

from plan.recorder import RecordedResource

Inputs = Mapping[str, Any]


@dataclass(frozen=True)
class ApiType:
    message: type[Message]
    name: Callable[[RecordedResource], str] | None = None
    renamed: Mapping[str, str] = field(default_factory=dict)
    dropped: tuple[str, ...] = ()
    emptied: tuple[str, ...] = ()
    wrap: Callable[[dict[str, Any]], dict[str, Any]] | None = None


def _pb(message: Any) -> type[Message]:
    """The protobuf class of a proto-plus message class."""
    return message.pb()


def _named(template: str, **keys: str) -> Callable[[RecordedResource], str]:
    """A resource name from TEMPLATE, each {key} read from the resource's outputs (inputs
    plus what the mocks compute: an auto-generated `name`)."""

    def name(resource: RecordedResource) -> str:
        values = {k: resource.outputs[v] for k, v in keys.items()}
        return template.format(**values)

    return name


def _binding(api: dict[str, Any]) -> dict[str, Any]:
    """One additive grant as the binding it adds to the resource's IAM Policy. Conditions
    need policy version 3 (iam/docs/policies#versions)."""
    binding = {"role": api.pop("role"), "members": [api.pop("member")]}
    if "condition" in api:
        binding["condition"] = api.pop("condition")
    return {"version": 3, "bindings": [binding], **api}


def _job_state(api: dict[str, Any]) -> dict[str, Any]:
    """A job's `paused`, which the provider strips from the body ("Field doesn't exist in
    API", resourceCloudSchedulerJobEncoder) and applies with jobs.pause or jobs.resume: the
    Job.state those leave."""
    paused = api.pop("paused", False)
    return {**api, "state": "PAUSED" if paused else "ENABLED"}


def _service(api: dict[str, Any]) -> dict[str, Any]:
    """A container's `ports`, one object in pulumi-gcp, as the list the API's Container has
    (terraform-provider-google's cloud_run_v2_service schema: `ports`, a list of at most one
    block, sent as google.cloud.run.v2.Container.ports)."""
    for container in api.get("template", {}).get("containers", []):
        if "ports" in container:
            container["ports"] = [container["ports"]]
    return api


def _account(api: dict[str, Any]) -> dict[str, Any]:
    account = {k: api.pop(k) for k in ("displayName", "description") if k in api}
    return {**api, "serviceAccount": account}


def _bucket(api: dict[str, Any]) -> dict[str, Any]:
    """The provider's flat bucket fields where google.storage.v2.Bucket nests them (the
    JSON API has no proto; google-cloud-storage ships the gRPC API's, google/storage/v2/
    storage.proto): IAM settings under iamConfig, lifecycle rules under lifecycle.rule,
    a rule's age in days as ageDays."""
    iam = {}
    if "uniformBucketLevelAccess" in api:
        iam["uniformBucketLevelAccess"] = {"enabled": api.pop("uniformBucketLevelAccess")}
    if "publicAccessPrevention" in api:
        iam["publicAccessPrevention"] = api.pop("publicAccessPrevention")
    rules = []
    for rule in api.pop("lifecycleRules", []):
        condition = dict(rule.get("condition", {}))
        if "age" in condition:
            condition["ageDays"] = condition.pop("age")
        rules.append({**rule, "condition": condition})
    return {
        **api,
        **({"iamConfig": iam} if iam else {}),
        **({"lifecycle": {"rule": rules}} if rules else {}),
    }


# The parent each *IamMember is on: the provider reads its policy, adds the binding and
# writes it back (getIamPolicy/setIamPolicy); the binding is what the API judges.
_IAM_PARENT = ("project", "location", "name", "topic", "subscription", "secretId")


def _iam(*parent: str) -> ApiType:
    return ApiType(policy_pb2.Policy, dropped=parent, wrap=_binding)


PROJECT = "projects/{project}"
TABLE: dict[str, ApiType] = {
    "gcp:cloudrunv2/service:Service": ApiType(
        _pb(run_v2.Service),
        name=_named(
            PROJECT + "/locations/{location}/services/{name}",
            project="project",
            location="location",
            name="name",
        ),
        renamed={
            "template.containers[].envs": "env",
            "template.containers[].dependsOns": "dependsOn",
        },
        # Terraform's own guard against destroying the service (pulumi-gcp 8 migration
        # guide); Cloud Run has no such field.
        dropped=("project", "location", "deletionProtection"),
        wrap=_service,
    ),
    "gcp:cloudtasks/queue:Queue": ApiType(
        _pb(tasks_v2.Queue),
        name=_named(
            PROJECT + "/locations/{location}/queues/{name}",
            project="project",
            location="location",
            name="name",
        ),
        renamed={"desiredState": "state"},
        dropped=("project", "location"),
    ),
    "gcp:pubsub/topic:Topic": ApiType(
        _pb(pubsub_v1.Topic),
        name=_named(PROJECT + "/topics/{name}", project="project", name="name"),
        dropped=("project",),
    ),
    "gcp:pubsub/subscription:Subscription": ApiType(
        _pb(pubsub_v1.Subscription),
        name=_named(PROJECT + "/subscriptions/{name}", project="project", name="name"),
        dropped=("project",),
        emptied=("expirationPolicy.ttl",),
    ),
    "gcp:firestore/database:Database": ApiType(
        _pb(firestore_database.Database),
        name=_named(PROJECT + "/databases/{name}", project="project", name="name"),
        # What a destroy does (delete or leave it): the provider's, not the API's.
        dropped=("project", "deletionPolicy"),
    ),
    "gcp:firestore/field:Field": ApiType(
        _pb(firestore_field.Field),
        name=_named(
            PROJECT + "/databases/{database}/collectionGroups/{collection}/fields/{field}",
            project="project",
            database="database",
            collection="collection",
            field="field",
        ),
        dropped=("project", "database", "collection", "field"),
    ),
    "gcp:monitoring/alertPolicy:AlertPolicy": ApiType(
        _pb(monitoring_v3.AlertPolicy), dropped=("project",)
    ),
    "gcp:monitoring/notificationChannel:NotificationChannel": ApiType(
        _pb(monitoring_v3.NotificationChannel), dropped=("project",)
    ),
    # The dashboard's inputs are its API JSON, as text.
    "gcp:monitoring/dashboard:Dashboard": ApiType(
        _pb(monitoring_dashboard_v1.Dashboard),
        dropped=("project",),
        wrap=lambda api: json.loads(api.pop("dashboardJson")),
    ),
    "gcp:serviceaccount/account:Account": ApiType(
        _pb(iam_admin_v1.CreateServiceAccountRequest),
        name=_named(PROJECT, project="project"),
        # How the provider answers a 409 (read the existing account), not a request field.
        dropped=("project", "createIgnoreAlreadyExists"),
        wrap=_account,
    ),
    # Turning an API on: services.enable; the disableOn* switches govern destroy only.
    "gcp:projects/service:Service": ApiType(
        _pb(service_usage_v1.EnableServiceRequest),
        name=_named(PROJECT + "/services/{service}", project="project", service="service"),
        dropped=("project", "service", "disableDependentServices", "disableOnDestroy"),
    ),
    # services.generateServiceIdentity (Service Usage v1beta1, not in the GA client) takes
    # the service's name alone: judged as the v1 Service it names.
    "gcp:projects/serviceIdentity:ServiceIdentity": ApiType(
        _pb(service_usage_v1.Service),
        name=_named(PROJECT + "/services/{service}", project="project", service="service"),
        dropped=("project", "service"),
    ),
    "gcp:storage/bucket:Bucket": ApiType(
        _pb(storage_v2.Bucket),
        name=_named("projects/_/buckets/{name}", name="name"),
        # Terraform's switch to delete the objects with the bucket; no API field.
        dropped=("project", "forceDestroy"),
        wrap=_bucket,
    ),
    "gcp:storage/bucketIAMMember:BucketIAMMember": _iam("bucket"),
    "gcp:cloudscheduler/job:Job": ApiType(
        _pb(scheduler_v1.Job),
        name=_named(
            PROJECT + "/locations/{region}/jobs/{name}",
            project="project",
            region="region",
            name="name",
        ),
        dropped=("project", "region"),
        wrap=_job_state,
    ),
    # projects.metrics.create: the metric's `name` is its id (the provider sends it as
    # given; the parent project is in the URL).
    "gcp:logging/metric:Metric": ApiType(_pb(logging_metrics.LogMetric), dropped=("project",)),
    "gcp:projects/iAMMember:IAMMember": _iam("project"),
    "gcp:serviceaccount/iAMMember:IAMMember": _iam("serviceAccountId"),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": _iam(*_IAM_PARENT),
    "gcp:cloudtasks/queueIamMember:QueueIamMember": _iam(*_IAM_PARENT),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": _iam(*_IAM_PARENT),
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": _iam(*_IAM_PARENT),
    "gcp:secretmanager/secretIamMember:SecretIamMember": _iam(*_IAM_PARENT),
}


def _walk(value: Any, path: list[str], visit: Callable[[dict[str, Any], str], None]) -> None:
    """Call VISIT(mapping, key) for each mapping PATH leads to; `x[]` steps into a list."""
    head, *rest = path
    key, is_list = head.removesuffix("[]"), head.endswith("[]")
    if not isinstance(value, dict) or key not in value:
        return
    if not rest:
        visit(value, key)
    elif is_list:
        for item in value[key]:
            _walk(item, rest, visit)
    else:
        _walk(value[key], rest, visit)


def _rename(new: str) -> Callable[[dict[str, Any], str], None]:
    def visit(mapping: dict[str, Any], key: str) -> None:
        mapping[new] = mapping.pop(key)

    return visit


def _drop_empty(mapping: dict[str, Any], key: str) -> None:
    if mapping[key] == "":
        del mapping[key]


def api_json(resource: RecordedResource, api: ApiType) -> dict[str, Any]:
    """What the provider sends for RESOURCE, in the API's JSON field names."""
    body: dict[str, Any] = copy.deepcopy(dict(resource.inputs))
    for path in api.dropped:
        body.pop(path, None)
    for path, new in api.renamed.items():
        _walk(body, path.split("."), _rename(new))
    for path in api.emptied:
        _walk(body, path.split("."), _drop_empty)
    if api.name is not None:
        body["name"] = api.name(resource)
    return api.wrap(body) if api.wrap is not None else body


def parse(resource: RecordedResource, api: ApiType | None = None) -> Message:
    """RESOURCE as Google's message for it (by TABLE, unless API is given); ParseError
    names what Google would refuse."""
    api = api or TABLE[resource.type]
    return json_format.ParseDict(
        api_json(resource, api), api.message(), ignore_unknown_fields=False
    )
