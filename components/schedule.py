"""A pipeline's schedules: one Cloud Scheduler job per schedule, whose ticks become tasks.

Route (README, "Scheduled work"): each job pushes its tick to the pipeline's own service
with an OIDC token of the pipeline's ticker account, at TICK_PREFIX + the schedule's
path; the handler creates one task in the pipeline's queue named from the job and the
tick's X-CloudScheduler-ScheduleTime (handler/ticks.py). Cloud Tasks creates a name once,
so a tick retried or delivered twice by Cloud Scheduler becomes one task, and that task
gets what every task gets: the queue's rate limits and retries, the handler's claim, dead
letters and replay.

Who can do what, and nothing more:
- the ticker account (`PIPELINE-ticker`): invoke this pipeline's service (run.invoker on
  the service);
- the Cloud Scheduler service agent: mint the ticker account's OIDC tokens (a grant on
  that one account);
- the runtime account: create tasks in its own queue (cloudtasks.enqueuer on the queue).
  The tick's task carries no token of its own: the queue's ALWAYS routing sets the URL
  and the invoker's token on every task, so the runtime account needs no actAs.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import pulumi
import pulumi_gcp as gcp

from . import observability as q
from .alerts import AUTO_CLOSE, EVALUATION_INTERVAL, MARKDOWN
from .iam import IamMember
from .identities import ServiceAccount, ServiceAccountArgs
from .name_rules import (
    alert_display_name,
    alert_subject,
    job_description,
    schedule_alert_title,
    tick_condition_display_name,
    tick_metric_description,
    ticker_display_name,
)
from .names import (
    FAILING_TICKS,
    RUNTIME_KEY,
    SCHEDULER_AGENT_KEY,
    TICKER_KEY,
    grant,
    schedule_alert,
    schedule_job,
    ticker_account,
)
from .roles import ENQUEUER, OPENID_TOKEN_CREATOR, RUN_INVOKER
from .settings import ScheduleSettings
from .settings.schedule import body_bytes
from .ticks import QUEUE_HEADER, TICK_PREFIX

# A tick only creates a task, so its attempt is short: 60 s is ample for one CreateTask
# (HTTP jobs take 15 s..30 min, google.cloud.scheduler.v1.Job.attempt_deadline).
ATTEMPT_DEADLINE = "60s"
# Cloud Scheduler retries a failed attempt at most 5 times (RetryConfig.retry_count: "Values
# greater than 5 and negative values are not allowed"). Retries are safe (the task name
# de-duplicates them); with backoff 10 s doubling up to 300 s they end within about 13
# minutes, well inside Cloud Tasks' name de-duplication window (about an hour).
TICK_RETRIES = 5
MIN_BACKOFF, MAX_BACKOFF, MAX_DOUBLINGS = "10s", "300s", 5
# A schedule's failing-ticks alert looks back this far: the longest a tick's retries take.
FAILING_TICKS_WINDOW = "900s"


@dataclass
class PipelineSchedulesArgs:
    project: pulumi.Input[str]
    location: str
    """The pipeline's location: Cloud Scheduler jobs run in the same region."""
    schedules: Mapping[str, ScheduleSettings]
    service_name: pulumi.Input[str]
    service_url: pulumi.Input[str]
    """Base URL of the pipeline's service: ticks go to it, and it is their OIDC audience."""
    queue_path: pulumi.Input[str]
    """projects/P/locations/L/queues/Q: where the handler creates each tick's task."""
    queue_name: pulumi.Input[str]
    runtime_member: pulumi.Input[str]
    """The service's runtime account: it creates the ticks' tasks."""
    scheduler_agent_member: pulumi.Input[str]
    """The Cloud Scheduler service agent (ProjectApis.cloudscheduler_agent_member)."""
    alerts_enabled: bool = True
    notification_channels: Sequence[pulumi.Input[str]] = field(default_factory=tuple)
    depends_on: Sequence[pulumi.Resource] = field(default_factory=tuple)


class PipelineSchedules(pulumi.ComponentResource):
    """The jobs, identity, grants, tick metric and alerts of one pipeline's schedules."""

    jobs: dict[str, pulumi.Output[str]]
    """Schedule name -> the job's full name, projects/P/locations/L/jobs/ID."""
    ticker_email: pulumi.Output[str]

    def __init__(
        self, name: str, args: PipelineSchedulesArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("cloudrun-tasks:index:Schedules", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        after_apis = pulumi.ResourceOptions(parent=self, depends_on=list(args.depends_on))
        ticker = ServiceAccount(
            ticker_account(name),
            ServiceAccountArgs(
                project=args.project,
                account_id=ticker_account(name),
                display_name=ticker_display_name(name),
                iam_members=[
                    IamMember(
                        role=OPENID_TOKEN_CREATOR,
                        member=args.scheduler_agent_member,
                        key=SCHEDULER_AGENT_KEY,
                    )
                ],
                depends_on=args.depends_on,
            ),
            child,
        )
        invoke = gcp.cloudrunv2.ServiceIamMember(
            grant(name, RUN_INVOKER, TICKER_KEY).name,
            project=args.project,
            location=args.location,
            name=args.service_name,
            role=RUN_INVOKER,
            member=ticker.member,
            opts=child,
        )
        enqueue = gcp.cloudtasks.QueueIamMember(
            grant(name, ENQUEUER, RUNTIME_KEY).name,
            project=args.project,
            location=args.location,
            name=args.queue_name,
            role=ENQUEUER,
            member=args.runtime_member,
            opts=child,
        )
        jobs = {
            schedule: self._job(name, schedule, s, args, ticker, [invoke, enqueue])
            for schedule, s in args.schedules.items()
        }
        # Before any alert reads it: a policy on a metric that doesn't exist yet fails.
        metric = gcp.logging.Metric(
            q.tick_metric_name(name),
            project=args.project,
            name=q.tick_metric_name(name),
            description=tick_metric_description(name),
            filter=pulumi.Output.from_input(args.project).apply(
                lambda project: q.tick_log_filter(
                    project, args.location, [schedule_job(name, s) for s in args.schedules]
                )
            ),
            label_extractors={q.TICK_STATUS: "EXTRACT(jsonPayload.status)"},
            metric_descriptor=gcp.logging.MetricMetricDescriptorArgs(
                metric_kind="DELTA",
                value_type="INT64",
                unit="1",
                labels=[
                    gcp.logging.MetricMetricDescriptorLabelArgs(
                        key=q.TICK_STATUS,
                        value_type="STRING",
                        description="The failed attempt's status; empty when it succeeded.",
                    )
                ],
            ),
            opts=after_apis,
        )
        project = pulumi.Output.from_input(args.project)
        for schedule in args.schedules:
            job_id = schedule_job(name, schedule)
            gcp.monitoring.AlertPolicy(
                schedule_alert(name, schedule),
                project=args.project,
                display_name=alert_display_name(name, schedule_alert_title(schedule)),
                combiner="OR",
                enabled=args.alerts_enabled,
                severity="ERROR",
                notification_channels=list(args.notification_channels),
                user_labels={"pipeline": name, "alert": FAILING_TICKS},
                conditions=[
                    gcp.monitoring.AlertPolicyConditionArgs(
                        display_name=tick_condition_display_name(name, schedule),
                        condition_prometheus_query_language=gcp.monitoring.AlertPolicyConditionConditionPrometheusQueryLanguageArgs(
                            query=project.apply(
                                lambda p, job=job_id: q.failing_ticks_query(
                                    name, p, args.location, job, FAILING_TICKS_WINDOW
                                )
                            ),
                            duration="0s",
                            evaluation_interval=EVALUATION_INTERVAL,
                        ),
                    )
                ],
                documentation=gcp.monitoring.AlertPolicyDocumentationArgs(
                    subject=alert_subject(name, schedule_alert_title(schedule)),
                    content=project.apply(
                        lambda p, job=job_id: q.failing_ticks_runbook(
                            p, args.location, job, FAILING_TICKS_WINDOW
                        )
                    ),
                    mime_type=MARKDOWN,
                ),
                alert_strategy=gcp.monitoring.AlertPolicyAlertStrategyArgs(auto_close=AUTO_CLOSE),
                opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, metric]),
            )
        self.jobs = {schedule: job.id for schedule, job in jobs.items()}
        self.ticker_email = ticker.email
        self.register_outputs({"jobs": self.jobs, "tickerEmail": self.ticker_email})

    def _job(
        self,
        pipeline: str,
        schedule: str,
        s: ScheduleSettings,
        args: PipelineSchedulesArgs,
        ticker: ServiceAccount,
        grants: list[pulumi.Resource],
    ) -> gcp.cloudscheduler.Job:
        headers = {QUEUE_HEADER: args.queue_path}
        body = None
        if s.body is not None:
            headers["Content-Type"] = "application/json"
            body = base64.b64encode(body_bytes(s.body)).decode()
        url = pulumi.Output.from_input(args.service_url).apply(
            lambda base: base.rstrip("/") + TICK_PREFIX + s.path
        )
        return gcp.cloudscheduler.Job(
            schedule_job(pipeline, schedule),
            project=args.project,
            region=args.location,
            name=schedule_job(pipeline, schedule),
            description=job_description(pipeline, schedule),
            schedule=s.cron,
            time_zone=s.time_zone,
            paused=s.paused,
            attempt_deadline=ATTEMPT_DEADLINE,
            retry_config=gcp.cloudscheduler.JobRetryConfigArgs(
                retry_count=TICK_RETRIES,
                min_backoff_duration=MIN_BACKOFF,
                max_backoff_duration=MAX_BACKOFF,
                max_doublings=MAX_DOUBLINGS,
            ),
            http_target=gcp.cloudscheduler.JobHttpTargetArgs(
                uri=url,
                http_method="POST",
                body=body,
                headers=headers,
                # The audience is the service's base URL, as for tasks: a path in it makes
                # Cloud Run answer 401.
                oidc_token=gcp.cloudscheduler.JobHttpTargetOidcTokenArgs(
                    service_account_email=ticker.email,
                    audience=args.service_url,
                ),
            ),
            # A tick's first request must find its grants in place.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*args.depends_on, *grants]),
        )
