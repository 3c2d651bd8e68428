"""What the alerts and the dashboard ask Cloud Monitoring, as plain functions of names.

Pure Python (no Pulumi): the components call these inside one `apply` per pipeline, once
the auto-generated queue and service names are known; bench/plain and the tests call
them with plain strings.

Query language: PromQL. Google no longer recommends MQL (deprecation notice, 2024-10-22;
since 2025-07-22 the console offers no MQL and support for it ended, though the API still
takes it: docs.cloud.google.com/stackdriver/docs/deprecations/mql) and recommends PromQL
for alerting policies, which take it as `conditionPrometheusQueryLanguage`
(cloud.google.com/monitoring/promql/promql-in-alerting). Dashboards take the same queries
as `timeSeriesQuery.prometheusQuery` (monitoring/dashboards/api-examples), so an alert and
the chart beside it read the same series.

Metric names in PromQL (monitoring/promql/promql-mapping): the first `/` becomes `:`,
every other special character `_`, and a distribution's series get `_bucket`, `_count`
and `_sum`. Every selector names the monitored resource type and all of its identifying
labels (project, location, queue or service; project and name for a bucket), so a query
matches this pipeline's series and no other pipeline's, in this project or another.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

# Monitored resources and metrics (monitoring/api/resources#tag_cloud_tasks_queue,
# #tag_cloud_run_revision; monitoring/api/metrics_gcp_c#gcp-cloudtasks,
# metrics_gcp_p_z#gcp-run, #gcp-pubsub).
QUEUE_RESOURCE = "cloud_tasks_queue"
RUN_RESOURCE = "cloud_run_revision"
SUBSCRIPTION_RESOURCE = "pubsub_subscription"
QUEUE_DEPTH = "cloudtasks_googleapis_com:queue_depth"
ATTEMPTS = "cloudtasks_googleapis_com:queue_task_attempt_count"
ATTEMPT_DELAYS = "cloudtasks_googleapis_com:queue_task_attempt_delays"
REQUESTS = "run_googleapis_com:request_count"
LATENCIES = "run_googleapis_com:request_latencies"
INSTANCES = "run_googleapis_com:container_instance_count"
# Alert 3's metric: messages waiting in the dead-letter subscription.
UNDELIVERED = "pubsub_googleapis_com:subscription_num_undelivered_messages"
# The payload bucket's contents (monitoring/api/metrics_gcp_p_z#gcp-storage, resource
# gcs_bucket: project_id, bucket_name, location; metric label storage_class). Google measures
# both once a day and repeats that value every 300 s until the next measurement, visible up
# to 690 s later; a bucket with no objects has no series at all. A day-old count can't say
# anything timely, so these are charted, never alerted on (README, "Claim checks").
BUCKET_RESOURCE = "gcs_bucket"
STORED_OBJECTS = "storage_googleapis_com:storage_object_count"
STORED_BYTES = "storage_googleapis_com:storage_total_bytes"
# Cloud Tasks reports response_code as lowercase gRPC code names; "ok" is success
# (Google's own Cloud Tasks dashboard sample, GoogleCloudPlatform/
# monitoring-dashboard-samples, dashboards/google-cloud-tasks).
OK = "ok"
# Windows of the dashboard's rates: five samples of a 60 s metric.
CHART_WINDOW = "5m"


@dataclass(frozen=True)
class PipelineNames:
    """What identifies one pipeline's series: known only once the queue and service exist."""

    pipeline: str
    project: str
    location: str
    queue: str
    service: str
    dead_letter_subscription: str
    """The subscription (id, not path) that keeps the pipeline's dead letters for replay."""
    payload_bucket: str | None = None
    """The claim checks' bucket, for a pipeline with `payloads.enabled` only."""

    @property
    def queue_selector(self) -> str:
        return (
            f'monitored_resource="{QUEUE_RESOURCE}",project_id="{self.project}",'
            f'location="{self.location}",queue_id="{self.queue}"'
        )

    @property
    def service_selector(self) -> str:
        return (
            f'monitored_resource="{RUN_RESOURCE}",project_id="{self.project}",'
            f'location="{self.location}",service_name="{self.service}"'
        )

    @property
    def subscription_selector(self) -> str:
        return (
            f'monitored_resource="{SUBSCRIPTION_RESOURCE}",project_id="{self.project}",'
            f'subscription_id="{self.dead_letter_subscription}"'
        )


def bucket_selector(project: str, bucket: str) -> str:
    """One bucket: its name is unique across Cloud Storage, and the project pins whose.
    Not its location, whose spelling in the label (case) the reference leaves open."""
    return f'monitored_resource="{BUCKET_RESOURCE}",project_id="{project}",bucket_name="{bucket}"'


def _seconds(duration: str) -> str:
    """'600s' -> '10m' when whole minutes: PromQL range selectors take 's' too, but
    minutes read better in a console."""
    seconds = int(duration.removesuffix("s"))
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


# --- alert conditions ------------------------------------------------------------------


def backlog_query(n: PipelineNames, threshold: int) -> str:
    """Alert 1: tasks waiting in the queue above THRESHOLD."""
    return f"sum({QUEUE_DEPTH}{{{n.queue_selector}}}) > {threshold}"


def failing_attempts_query(n: PipelineNames, ratio: float, window: str) -> str:
    """Alert 2: share of attempts with a non-OK response over WINDOW above RATIO. With no
    attempts at all the division is empty and the condition stays quiet."""
    w = _seconds(window)
    failed = f'{ATTEMPTS}{{{n.queue_selector},response_code!="{OK}"}}'
    every = f"{ATTEMPTS}{{{n.queue_selector}}}"
    return f"sum(rate({failed}[{w}])) / sum(rate({every}[{w}])) > {ratio:g}"


def at_max_instances_query(n: PipelineNames, max_instances: int) -> str:
    """Alert 4a: the service's instances at its ceiling: the queue is throttled by capacity."""
    return f"sum({INSTANCES}{{{n.service_selector}}}) >= {max_instances}"


def server_errors_query(n: PipelineNames, ratio: float, window: str) -> str:
    """Alert 4b: share of the service's responses that are 5xx over WINDOW above RATIO."""
    w = _seconds(window)
    errors = f'{REQUESTS}{{{n.service_selector},response_code_class="5xx"}}'
    every = f"{REQUESTS}{{{n.service_selector}}}"
    return f"sum(rate({errors}[{w}])) / sum(rate({every}[{w}])) > {ratio:g}"


def dead_letters(n: PipelineNames) -> str:
    """Messages waiting in the pipeline's dead-letter subscription (chart and alert 3)."""
    return f"sum({UNDELIVERED}{{{n.subscription_selector}}})"


def stored_objects(project: str, bucket: str) -> str:
    """Objects in BUCKET, every storage class together (the dashboard's payload chart)."""
    return f"sum({STORED_OBJECTS}{{{bucket_selector(project, bucket)}}})"


def stored_bytes(project: str, bucket: str) -> str:
    """Bytes in BUCKET, every storage class together."""
    return f"sum({STORED_BYTES}{{{bucket_selector(project, bucket)}}})"


def dead_letters_query(n: PipelineNames) -> str:
    """Alert 3: any dead letter waiting for a replay."""
    return f"{dead_letters(n)} > 0"


# --- links and runbooks ------------------------------------------------------------------

CONSOLE = "https://console.cloud.google.com"


def queue_link(n: PipelineNames) -> str:
    return f"{CONSOLE}/cloudtasks/queue/{n.location}/{n.queue}/tasks?project={n.project}"


def service_link(n: PipelineNames, tab: str = "metrics") -> str:
    return f"{CONSOLE}/run/detail/{n.location}/{n.service}/{tab}?project={n.project}"


def logs_link(n: PipelineNames, query: str) -> str:
    return f"{CONSOLE}/logs/query;query={quote(query, safe='')}?project={n.project}"


def _queue_logs(n: PipelineNames) -> str:
    return logs_link(n, f'resource.type="{QUEUE_RESOURCE}" resource.labels.queue_id="{n.queue}"')


def _service_errors(n: PipelineNames) -> str:
    return logs_link(
        n,
        f'resource.type="{RUN_RESOURCE}" resource.labels.service_name="{n.service}"'
        " severity>=ERROR",
    )


def _runbook(title: str, meaning: str, checks: list[str], n: PipelineNames) -> str:
    lines = [
        f"## {title}: pipeline `{n.pipeline}`",
        "",
        meaning,
        "",
        f"Queue `{n.queue}` and service `{n.service}` in `{n.location}`, project `{n.project}`.",
        "",
        "First three things to check:",
        "",
        *[f"{index}. {check}" for index, check in enumerate(checks, 1)],
    ]
    return "\n".join(lines) + "\n"


def backlog_runbook(n: PipelineNames, threshold: int, duration: str) -> str:
    return _runbook(
        "Queue backlog",
        f"More than {threshold} tasks have waited in the queue for {duration}: the queue"
        " dispatches slower than tasks arrive, or it is paused.",
        [
            f"Is the queue running, and how old is its oldest task? [Queue]({queue_link(n)})",
            "Is the handler failing or slow, so tasks are retried? [Service metrics]"
            f"({service_link(n)}), [errors]({_service_errors(n)})",
            "Is the service at its instance ceiling or the queue at its rate limit"
            f" (maxDispatchesPerSecond)? [Dispatch logs]({_queue_logs(n)})",
        ],
        n,
    )


def failing_attempts_runbook(n: PipelineNames, ratio: float, window: str) -> str:
    return _runbook(
        "Failing attempts",
        f"More than {ratio:.0%} of task attempts over {window} got a non-OK answer (any"
        " non-2xx, 4xx included): those tasks are retried, and dropped once retries run out.",
        [
            f"Which response codes, and since when? [Handler errors]({_service_errors(n)})",
            f"Did a new revision roll out just before? [Service revisions]"
            f"({service_link(n, 'revisions')})",
            f"Are attempts rejected before the handler (401/403: OIDC audience or invoker"
            f" grant)? [Dispatch logs]({_queue_logs(n)})",
        ],
        n,
    )


def capacity_runbook(n: PipelineNames, max_instances: int, ratio: float, window: str) -> str:
    return _runbook(
        "Service capacity",
        f"The service has run at its ceiling of {max_instances} instances, or more than"
        f" {ratio:.0%} of its responses over {window} were 5xx: the queue is being throttled"
        " by the service, or the service is failing.",
        [
            f"Instances, latency and 5xx by revision: [Service metrics]({service_link(n)})",
            f"Errors and timeouts in the handler: [Errors]({_service_errors(n)})",
            "Raise service.maxInstances (and check the region's quota) or lower the queue's"
            f" maxConcurrentDispatches. [Queue]({queue_link(n)})",
        ],
        n,
    )


def subscription_link(n: PipelineNames) -> str:
    return (
        f"{CONSOLE}/cloudpubsub/subscription/detail/{n.dead_letter_subscription}"
        f"?project={n.project}"
    )


def dead_letters_runbook(n: PipelineNames) -> str:
    return _runbook(
        "Dead letters waiting",
        f"Tasks failed for good and wait in subscription `{n.dead_letter_subscription}`"
        " for a replay; each is kept 31 days after it was dead-lettered, then lost.",
        [
            f"Why did they fail? The `reason` attribute ([subscription]"
            f"({subscription_link(n)}), [errors]({_service_errors(n)})): the last allowed"
            " attempt or a rejected payload; `failed after the dispatch deadline` (the work"
            " overran: raise `dispatchDeadline`, or have it return early on"
            " `task.time_left()`); `another delivery still held the task` (a long or stuck"
            " task at the last attempt).",
            "Fix the cause (a handler bug, a rejected payload, a dependency down) before"
            " replaying, or the replayed tasks fail again.",
            f"Replay: `python -m taskclient replay --stack STACK --pipeline {n.pipeline}`"
            " (`--dry-run` first); it acknowledges each message once its task exists, and a"
            " task that was done after all (or replayed already) answers `duplicate`.",
        ],
        n,
    )


def dashboard_url(project: str, dashboard_id: str) -> str:
    """Console URL of a dashboard, from its id (`projects/NUMBER/dashboards/ID`)."""
    return (
        f"{CONSOLE}/monitoring/dashboards/builder/{dashboard_id.split('/')[-1]}?project={project}"
    )


# --- schedules ---------------------------------------------------------------------------
# Cloud Scheduler publishes no job metric in Google's list (monitoring/api/metrics_gcp_c has
# no cloudscheduler section, and a project ticking every minute had no cloudscheduler
# descriptors: see the README's "Scheduled work"). What it does write is a log entry per
# attempt, `cloudscheduler.googleapis.com/executions` on the monitored resource
# `cloud_scheduler_job` (labels project_id, location, job_id): AttemptFinished, with
# jsonPayload.status set when the attempt failed. Each pipeline with schedules counts
# those in a logs-based metric (components/schedule.py), labelled by that status; a
# logs-based metric's series keep the entry's monitored resource.
SCHEDULER_RESOURCE = "cloud_scheduler_job"
ATTEMPT_FINISHED = "type.googleapis.com/google.cloud.scheduler.logging.AttemptFinished"
TICK_STATUS = "status"


def tick_metric_name(pipeline: str) -> str:
    """The logs-based metric counting PIPELINE's tick attempts (one per pipeline)."""
    return f"cloudrun-tasks-{pipeline}-ticks"


def tick_metric_promql(pipeline: str) -> str:
    """A user logs-based metric in PromQL: logging.googleapis.com/user/NAME, mapped."""
    return "logging_googleapis_com:user_" + tick_metric_name(pipeline).replace("-", "_")


def tick_log_filter(project: str, location: str, jobs: list[str]) -> str:
    """The attempts of these jobs, finished (the count of ticks, failed or not)."""
    ids = " OR ".join(f'"{job}"' for job in jobs)
    return (
        f'logName="projects/{project}/logs/cloudscheduler.googleapis.com%2Fexecutions"'
        f' AND resource.type="{SCHEDULER_RESOURCE}" AND resource.labels.location="{location}"'
        f' AND resource.labels.job_id=({ids}) AND jsonPayload."@type"="{ATTEMPT_FINISHED}"'
    )


def tick_selector(pipeline: str, project: str, location: str, job: str) -> str:
    return (
        f'monitored_resource="{SCHEDULER_RESOURCE}",project_id="{project}",'
        f'location="{location}",job_id="{job}"'
    )


def failing_ticks_query(pipeline: str, project: str, location: str, job: str, window: str) -> str:
    """A schedule's alert: an attempt of its job finished with an error status in WINDOW
    (the handler could not create the tick's task, or the service was unreachable)."""
    selector = tick_selector(pipeline, project, location, job)
    failed = f'{tick_metric_promql(pipeline)}{{{selector},{TICK_STATUS}!=""}}'
    return f"sum(increase({failed}[{_seconds(window)}])) > 0"


def ticks_per_job_query(pipeline: str, project: str, location: str, jobs: list[str]) -> str:
    """The dashboard's chart: tick attempts of JOBS (the pipeline's) per job and status,
    per minute. Job ids are letters, digits, `-` and `_`: nothing a regex would read."""
    selector = (
        f'monitored_resource="{SCHEDULER_RESOURCE}",project_id="{project}",'
        f'location="{location}",job_id=~"{"|".join(jobs)}"'
    )
    return (
        f"sum by (job_id, {TICK_STATUS})"
        f" (rate({tick_metric_promql(pipeline)}{{{selector}}}[{CHART_WINDOW}])) * 60"
    )


def failing_ticks_runbook(project: str, location: str, job: str, window: str) -> str:
    logs = (
        f'resource.type="{SCHEDULER_RESOURCE}" resource.labels.job_id="{job}"'
        f' resource.labels.location="{location}"'
    )
    return "\n".join(
        [
            f"## Schedule {job}: a tick failed",
            "",
            f"An attempt of Cloud Scheduler job `{job}` failed in the last {window}: its tick"
            " did not become a task. Cloud Scheduler retries it; a tick whose retries all"
            " fail is skipped until the next run time.",
            "",
            f"- The job's attempts: [logs]({CONSOLE}/logs/query;query={quote(logs, safe='')}"
            f"?project={project}) (jsonPayload.status and debugInfo say why).",
            "- 401/403: the ticker account lost run.invoker on the service, or the Cloud"
            " Scheduler agent its token grant on the ticker account.",
            "- 500 from the handler: it could not create the task (cloudtasks.enqueuer of the"
            " runtime account on its queue, or the queue paused or deleted).",
            "- Fire the tick by hand once fixed: `python -m taskclient tick --pipeline P"
            " --schedule S`.",
            "",
        ]
    )


# --- claims lost -------------------------------------------------------------------------
# A holder that finds its claim taken over (its lease lapsed while it was paused, starved or
# cut off from Firestore, and another delivery claimed the task) writes one ERROR line with
# "status": "claim_lost" (handler/firestore_store.py, FirestoreStore._lost) as a JSON object
# on stdout (handler/logs.py). Cloud Run's built-in logging agent stores a line that is a
# serialized JSON object as the entry's jsonPayload, moving only its special fields
# (`severity`, `time`, `logging.googleapis.com/trace`...) to the LogEntry, on the monitored
# resource `cloud_run_revision` (labels project_id, location, service_name, revision_name,
# configuration_name): docs.cloud.google.com/logging/docs/structured-logging ("Built-in
# logging agents", "Special JSON fields in messages"), run/docs/logging ("container logs").
# So `status` stays jsonPayload.status. Each pipeline counts those lines in a logs-based
# metric labelled by nothing (task names and deliveries are unbounded; they stay in the log
# line, which the runbook links to); its series keep the entry's monitored resource.
CLAIM_LOST = "claim_lost"


def claims_lost_metric_name(pipeline: str) -> str:
    """The logs-based metric counting PIPELINE's lost claims (one per pipeline)."""
    return f"cloudrun-tasks-{pipeline}-claims-lost"


def claims_lost_metric_promql(pipeline: str) -> str:
    """A user logs-based metric in PromQL: logging.googleapis.com/user/NAME, mapped."""
    return "logging_googleapis_com:user_" + claims_lost_metric_name(pipeline).replace("-", "_")


def claims_lost_log_filter(location: str, service: str) -> str:
    """The handler's claim_lost lines from this pipeline's service (any revision). A
    logs-based metric counts its own project's entries only, so no project is named."""
    return (
        f'resource.type="{RUN_RESOURCE}" AND resource.labels.location="{location}"'
        f' AND resource.labels.service_name="{service}"'
        f' AND jsonPayload.status="{CLAIM_LOST}"'
    )


def claims_lost(n: PipelineNames, window: str) -> str:
    """Claims the pipeline's service lost over WINDOW, every revision together."""
    return (
        f"sum(increase({claims_lost_metric_promql(n.pipeline)}{{{n.service_selector}}}"
        f"[{_seconds(window)}]))"
    )


def claims_lost_query(n: PipelineNames, window: str) -> str:
    """Alert 5: a claim lost in WINDOW, so a task may have run twice."""
    return f"{claims_lost(n, window)} > 0"


def claims_lost_per_minute(n: PipelineNames) -> str:
    """The dashboard's chart: lost claims per minute."""
    return (
        f"sum(rate({claims_lost_metric_promql(n.pipeline)}{{{n.service_selector}}}"
        f"[{CHART_WINDOW}])) * 60"
    )


def claims_lost_runbook(n: PipelineNames, window: str) -> str:
    lost = logs_link(n, claims_lost_log_filter(n.location, n.service))
    return _runbook(
        "Claims lost",
        f"A delivery of the service lost its claim on a task in the last {window}: its lease"
        " lapsed before a renewal landed (the instance was paused, starved of CPU or cut off"
        " from Firestore for longer than a lease), another delivery claimed the task, and the"
        " first one's work was still running. The task may have run twice. A processor that"
        " passes its fencing token (the claim generation) to its own store is refused there"
        " on the older token, so its effects stay exactly once; any other processor's effects"
        " may be doubled. This is the edge of the guarantee envelope (docs/guarantees.md).",
        [
            "Which tasks, and which deliveries? Each line names the task (`queue`,"
            " `taskName`), the delivery that lost it (`delivery`, `claimGeneration`) and the"
            f" one that took it over (`takenBy`, `takenGeneration`): [claims lost]({lost});"
            " check those tasks' effects in the processor's store.",
            "Was Firestore slow or down? Look for `claim not renewed` and `store_unavailable`"
            " lines and Firestore's latency and errors around that time: [handler errors]"
            f"({_service_errors(n)}).",
            "Were instances starved or frozen? CPU utilization at its limit, or instances"
            f" paused: [service metrics]({service_link(n)}). Raise `service.cpu`, or"
            " `dispatchDeadline` (a lease is half of it, at most 60 s) so that a pause is"
            " shorter than a lease.",
        ],
        n,
    )
