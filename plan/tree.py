"""The readable plan: the component tree, each resource's key settings, the stack outputs.

Values only a deployment knows print as UNKNOWN; where the program wired one resource's
output into another (an email, a URL), the plan names the resource it comes from, which
is what a reviewer needs to check the wiring.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from components.settings import ScheduleSettings
from plan.document import AUTONAMED_NOTE, Resource, resources
from plan.recorder import UNKNOWN

Details = Callable[[Resource, dict[str, Resource]], list[str]]


def _get(inputs: dict[str, Any], path: str, default: Any = "-") -> Any:
    value: Any = inputs
    for part in path.split("."):
        if isinstance(value, list):
            value = value[int(part)] if int(part) < len(value) else None
        elif isinstance(value, dict):
            value = value.get(part)
        else:
            value = None
        if value is None:
            return default
    return value


def _wired(
    resource: Resource,
    path: str,
    by_key: dict[str, Resource],
    type_: str | None = None,
) -> str:
    """An input's value; for an unknown one, also the resource whose output it will be.

    PATH is dotted; the dependency is looked up on its top-level input, narrowed to
    resources of TYPE_ when that input is fed by several.
    """
    value = _get(resource.inputs, path)
    if value != UNKNOWN:
        return value if isinstance(value, str) else json.dumps(value)
    sources = [
        by_key[key].label
        for key in resource.input_dependencies.get(path.split(".")[0], [])
        if type_ is None or by_key[key].type == type_
    ]
    return f"{UNKNOWN} (from {', '.join(sources)})" if sources else UNKNOWN


ACCOUNT = "gcp:serviceaccount/account:Account"
CLOUD_RUN = "gcp:cloudrunv2/service:Service"
QUEUE = "gcp:cloudtasks/queue:Queue"


def _queue(r: Resource, by_key: dict[str, Resource]) -> list[str]:
    i = r.inputs
    attempts = _get(i, "retryConfig.maxAttempts")
    host = _wired(r, "httpTarget.uriOverride.host", by_key, CLOUD_RUN)
    oidc = _wired(r, "httpTarget.oidcToken.serviceAccountEmail", by_key, ACCOUNT)
    return [
        f"location {_get(i, 'location')}, project {_get(i, 'project')},"
        f" state {_get(i, 'desiredState')}",
        f"rate: {_get(i, 'rateLimits.maxDispatchesPerSecond')}/s,"
        f" at most {_get(i, 'rateLimits.maxConcurrentDispatches')} concurrent",
        f"retries: {'unlimited' if attempts == -1 else attempts} attempts"
        f" within {_get(i, 'retryConfig.maxRetryDuration')},"
        f" backoff {_get(i, 'retryConfig.minBackoff')}..{_get(i, 'retryConfig.maxBackoff')}"
        f" ({_get(i, 'retryConfig.maxDoublings')} doublings)",
        f"routes every task ({_get(i, 'httpTarget.uriOverride.uriOverrideEnforceMode')})"
        f" to {_get(i, 'httpTarget.uriOverride.scheme')} {host}, OIDC token of {oidc}",
        f"logging: sampling ratio {_get(i, 'stackdriverLoggingConfig.samplingRatio')}",
    ]


def _env_names(container: dict[str, Any]) -> str:
    envs = container.get("envs") or []
    plain = [e["name"] for e in envs if "valueSource" not in e]
    secrets = [
        f"{e['name']}<-{_get(e, 'valueSource.secretKeyRef.secret')}"
        f":{_get(e, 'valueSource.secretKeyRef.version')}"
        for e in envs
        if "valueSource" in e
    ]
    return f"env: {', '.join(plain) or '-'}; secrets: {', '.join(secrets) or '-'}"


def _service(r: Resource, by_key: dict[str, Resource]) -> list[str]:
    i = r.inputs
    container = _get(i, "template.containers.0", {})
    runs_as = _wired(r, "template.serviceAccount", by_key, ACCOUNT)
    lines = [
        f"location {_get(i, 'location')}, project {_get(i, 'project')},"
        f" image {_get(container, 'image')}",
        f"ingress {_get(i, 'ingress')}, timeout {_get(i, 'template.timeout')},"
        f" {_get(i, 'template.maxInstanceRequestConcurrency')} requests per instance",
        f"scaling: {_get(i, 'template.scaling.minInstanceCount', 0)}.."
        f"{_get(i, 'template.scaling.maxInstanceCount')} instances,"
        f" cpu {_get(container, 'resources.limits.cpu')},"
        f" memory {_get(container, 'resources.limits.memory')}",
        f"runs as {runs_as}",
        _env_names(container),
    ]
    for app in (_get(i, "template.containers", None) or [])[1:]:
        probe = app.get("startupProbe") or {}
        ready = (
            f"GET {_get(probe, 'httpGet.path')}"
            if "httpGet" in probe
            else f"TCP {_get(probe, 'tcpSocket.port')}"
        )
        lines += [
            f"container {_get(app, 'name')}: image {_get(app, 'image')},"
            f" cpu {_get(app, 'resources.limits.cpu')},"
            f" memory {_get(app, 'resources.limits.memory')}, ready when {ready} passes"
            f" (the handler starts after it)",
            f"container {_get(app, 'name')} {_env_names(app)}",
        ]
    lines.append(f"deletion protection {'on' if i.get('deletionProtection') else 'off'}")
    return lines


def _account(r: Resource, _: dict[str, Resource]) -> list[str]:
    return [f"account id {_get(r.inputs, 'accountId')} ({_get(r.inputs, 'displayName')})"]


def _api(r: Resource, _: dict[str, Resource]) -> list[str]:
    kept = not r.inputs.get("disableOnDestroy", True)
    return [f"enables {_get(r.inputs, 'service')}{' (kept on at destroy)' if kept else ''}"]


def _agent(r: Resource, _: dict[str, Resource]) -> list[str]:
    return [f"service agent of {_get(r.inputs, 'service')}"]


def _grant(target: str, what: str) -> Details:
    """IAM member: "who -> role -> on what"; TARGET is the input naming the resource."""

    def details(r: Resource, by_key: dict[str, Resource]) -> list[str]:
        on = [by_key[key].label for key in r.input_dependencies.get(target, [])]
        on_what = on[0] if on else f"{what} {_get(r.inputs, target)}"
        return [f"grant: {_wired(r, 'member', by_key)} -> {_get(r.inputs, 'role')} -> {on_what}"]

    return details


def _project_grant(r: Resource, by_key: dict[str, Resource]) -> list[str]:
    """A project-level grant: what its IAM condition narrows it to is the point."""
    condition = _get(r.inputs, "condition.expression", "none: the whole project")
    return [
        f"grant: {_wired(r, 'member', by_key)} -> {_get(r.inputs, 'role')} -> project"
        f" {_get(r.inputs, 'project')}",
        f"only if: {condition}",
    ]


def _database(r: Resource, _: dict[str, Resource]) -> list[str]:
    i = r.inputs
    return [
        f"database {_get(i, 'name')} ({_get(i, 'type')}) in {_get(i, 'locationId')},"
        f" project {_get(i, 'project')}",
        f"delete protection {_get(i, 'deleteProtectionState')},"
        f" on destroy {_get(i, 'deletionPolicy')}",
    ]


def _ttl(r: Resource, by_key: dict[str, Resource]) -> list[str]:
    i = r.inputs
    return [
        f"TTL: documents of collection group {_get(i, 'collection')} deleted"
        f" {_get(i, 'ttlConfig.expirationOffset', '0s')} after their {_get(i, 'field')}"
        f" (database {_wired(r, 'database', by_key)})",
    ]


def _topic(r: Resource, _: dict[str, Resource]) -> list[str]:
    return [f"dead-letter topic, project {_get(r.inputs, 'project')}"]


def _subscription(r: Resource, by_key: dict[str, Resource]) -> list[str]:
    i = r.inputs
    ttl = _get(i, "expirationPolicy.ttl", None)
    return [
        f"pull subscription of {_wired(r, 'topic', by_key)}",
        f"keeps messages {_get(i, 'messageRetentionDuration')}, acked ones"
        f" {'too' if i.get('retainAckedMessages') else 'not'};"
        f" expires {'never' if ttl == '' else ttl or 'after 31 idle days (default)'};"
        f" ack deadline {_get(i, 'ackDeadlineSeconds')}s",
    ]


def _alert(r: Resource, _: dict[str, Resource]) -> list[str]:
    i = r.inputs
    channels = i.get("notificationChannels") or []
    lines = [
        f"{'enabled' if i.get('enabled', True) else 'DISABLED'}, severity"
        f" {_get(i, 'severity')}, notifies {len(channels) or 'nobody (no channel)'}"
        f"{'' if not channels else ' channel' + 's' * (len(channels) != 1)}"
    ]
    for condition in i.get("conditions") or []:
        promql = condition.get("conditionPrometheusQueryLanguage", {})
        lines.append(
            f"when {_get(condition, 'displayName')} (PromQL, for {_get(promql, 'duration')})"
        )
    return lines


NEXT_RUNS = 5


def _job(r: Resource, by_key: dict[str, Resource]) -> list[str]:
    """A schedule's job: when it ticks, where to, as whom, and its next run times from now
    (cronsim, as the settings validated it; the local loop fires on the same times)."""
    i = r.inputs
    cron, zone = _get(i, "schedule"), _get(i, "timeZone", "UTC")
    runs = ScheduleSettings.model_validate({"cron": cron, "timeZone": zone}).next_runs(
        datetime.now(UTC), NEXT_RUNS
    )
    return [
        f"cron {cron!r} in {zone}{', PAUSED' if i.get('paused') else ''};"
        f" up to {_get(i, 'retryConfig.retryCount', 0)} retries, attempt deadline"
        f" {_get(i, 'attemptDeadline')}",
        f"POST {_wired(r, 'httpTarget.uri', by_key, CLOUD_RUN)}",
        f"as {_wired(r, 'httpTarget.oidcToken.serviceAccountEmail', by_key, ACCOUNT)}",
        f"next {NEXT_RUNS} runs: " + ", ".join(run.strftime("%Y-%m-%d %H:%M %Z") for run in runs),
    ]


def _log_metric(r: Resource, _: dict[str, Resource]) -> list[str]:
    return [f"logs-based metric {_get(r.inputs, 'name')}: {_get(r.inputs, 'description')}"]


def _dashboard(r: Resource, _: dict[str, Resource]) -> list[str]:
    text = r.inputs.get("dashboardJson")
    if not isinstance(text, str) or text == UNKNOWN:
        return [f"dashboard JSON {UNKNOWN}"]
    tiles = json.loads(text).get("mosaicLayout", {}).get("tiles", [])
    rows = [t["widget"]["title"] for t in tiles if "text" in t["widget"]]
    return [f"{len(rows)} rows, {len(tiles)} tiles: {', '.join(rows)}"]


DETAILS: dict[str, Details] = {
    "gcp:monitoring/alertPolicy:AlertPolicy": _alert,
    "gcp:monitoring/dashboard:Dashboard": _dashboard,
    "gcp:cloudscheduler/job:Job": _job,
    "gcp:logging/metric:Metric": _log_metric,
    QUEUE: _queue,
    CLOUD_RUN: _service,
    ACCOUNT: _account,
    "gcp:projects/service:Service": _api,
    "gcp:projects/serviceIdentity:ServiceIdentity": _agent,
    "gcp:cloudtasks/queueIamMember:QueueIamMember": _grant("name", "queue"),
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": _grant("name", "service"),
    "gcp:serviceaccount/iAMMember:IAMMember": _grant("serviceAccountId", "account"),
    "gcp:secretmanager/secretIamMember:SecretIamMember": _grant("secretId", "secret"),
    "gcp:pubsub/topicIAMMember:TopicIAMMember": _grant("topic", "topic"),
    "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember": _grant(
        "subscription", "subscription"
    ),
    "gcp:projects/iAMMember:IAMMember": _project_grant,
    "gcp:firestore/database:Database": _database,
    "gcp:firestore/field:Field": _ttl,
    "gcp:pubsub/topic:Topic": _topic,
    "gcp:pubsub/subscription:Subscription": _subscription,
}


def _outputs(value: Any, indent: str) -> list[str]:
    if isinstance(value, dict):
        lines = []
        for key, item in sorted(value.items()):
            if isinstance(item, dict):
                lines += [f"{indent}{key}:", *_outputs(item, indent + "  ")]
            else:
                lines.append(f"{indent}{key}: {_outputs(item, '')[0]}")
        return lines
    return [f"{indent}{UNKNOWN if value == UNKNOWN else json.dumps(value)}"]


def counts(document: dict[str, Any]) -> tuple[int, int]:
    """(cloud resources, components) of a plan."""
    by_key = resources(document)
    custom = sum(not r.component for r in by_key.values())
    return custom, len(by_key) - custom


def summary(document: dict[str, Any]) -> str:
    custom, components = counts(document)
    return (
        f"Stack {document['stack']} plans {custom} resources in {components} components"
        f" (the full tree and graph: `make plan STACK={document['stack']} FORMAT=markdown`)."
    )


def render(document: dict[str, Any]) -> str:
    by_key = resources(document)
    children: dict[str, list[Resource]] = {}
    for resource in by_key.values():
        children.setdefault(resource.parent, []).append(resource)
    custom, components = counts(document)
    lines = [
        f"Offline plan of stack {document['stack']} ({document['project']}):"
        f" {custom} resources in {components} components, computed under mocks"
        " (no cloud, no credentials; not a `pulumi preview`)",
        "",
    ]

    def walk(parent: str, prefix: str) -> None:
        kids = sorted(children.get(parent, []), key=lambda r: (not r.component, r.type, r.name))
        for index, resource in enumerate(kids):
            last = index == len(kids) - 1
            flags = " [protected]" if resource.protect else ""
            lines.append(f"{prefix}{'└─ ' if last else '├─ '}{resource.label}{flags}")
            inner = prefix + ("   " if last else "│  ")
            detail = DETAILS.get(resource.type)
            if detail:
                lines.extend(f"{inner}    {line}" for line in detail(resource, by_key))
            walk(resource.key, inner)

    lines.append(f"stack {document['stack']}")
    walk("", "")
    lines += ["", "Stack outputs:", *_outputs(document["outputs"], "  ")]
    lines += ["", f"Note: {AUTONAMED_NOTE}."]
    return "\n".join(lines) + "\n"
