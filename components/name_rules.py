"""Google's rules for every id and display name the program derives, in one table.

Each rule is what Google documents for the field, cited beside it (the proto field
comments ship in the client libraries named). `pipeline_ids` spells every id a pipeline
name becomes in Google's APIs, so settings can refuse a pipeline name that any of them
would break (`google-ads` makes the Pub/Sub topic `google-ads-dead-letters-…`, and Pub/Sub
refuses ids starting with `goog`) before any resource is registered.

No settings or Pulumi imports: settings validate pipeline names with this module, and the
components and components.names take these spellings from here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import regex

from .observability import claims_lost_metric_name, tick_metric_name


@dataclass(frozen=True)
class NameRule:
    what: str
    pattern: str
    """Matched against the whole value (`regex` syntax: \\p{...} classes for labels)."""
    allowed: str
    source: str
    reserved_prefix: str = ""
    max_bytes: int = 0
    """Where Google also limits the UTF-8 length (labels)."""
    text: bool = False
    """Free text (a description, a display name): errors give its length, not its value."""

    def problem(self, value: str) -> str | None:
        """Why Google refuses VALUE for this field, or None."""
        if self.reserved_prefix and value.startswith(self.reserved_prefix):
            return f"must not start with {self.reserved_prefix!r}"
        if regex.fullmatch(self.pattern, value) is None:
            return f"must be {self.allowed}"
        if self.max_bytes and len(value.encode()) > self.max_bytes:
            return f"must be at most {self.max_bytes} bytes"
        return None


PUBSUB_ID = NameRule(
    "Pub/Sub topic or subscription id",
    r"[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}",
    "3..255 letters, digits, '-', '_', '.', '~', '+' or '%', starting with a letter",
    # "{topic} must start with a letter, and contain only letters ([A-Za-z]), numbers
    # ([0-9]), dashes (-), underscores (_), periods (.), tildes (~), plus (+) or percent
    # signs (%). It must be between 3 and 255 characters in length, and it must not start
    # with "goog"." (the same for {subscription})
    "google.pubsub.v1.Topic.name, Subscription.name",
    reserved_prefix="goog",
)
SERVICE_ACCOUNT_ID = NameRule(
    "service account id",
    r"[a-z](?:[-a-z0-9]{4,28}[a-z0-9])",
    "6..30 lowercase letters, digits and hyphens, starting with a letter and not ending"
    " with a hyphen",
    # "unique within a project, must be 6-30 characters long, and match the regular
    # expression [a-z]([-a-z0-9]*[a-z0-9]) to comply with RFC1035"
    "google.iam.admin.v1.CreateServiceAccountRequest.account_id",
)
RUN_SERVICE = NameRule(
    "Cloud Run service name",
    r"[a-z](?:[-a-z0-9]{0,47}[a-z0-9])?",
    "1..49 lowercase letters, digits and hyphens, starting with a letter and not ending"
    " with a hyphen",
    # "must begin with letter, and cannot end with hyphen; must contain fewer than 50
    # characters"; lowercase, as the service's run.app host name is a DNS label (RFC1035)
    "google.cloud.run.v2.CreateServiceRequest.service_id",
)
QUEUE_ID = NameRule(
    "Cloud Tasks queue id",
    r"[A-Za-z0-9-]{1,100}",
    "1..100 letters, digits and hyphens",
    # "QUEUE_ID can contain letters ([A-Za-z]), numbers ([0-9]), or hyphens (-). The
    # maximum length is 100 characters."
    "google.cloud.tasks.v2.Queue.name",
)
FIRESTORE_DATABASE_ID = NameRule(
    "Firestore database id",
    r"[a-z][a-z0-9-]{2,61}[a-z0-9]",
    "4..63 lowercase letters, digits and hyphens, starting with a letter and ending with a"
    " letter or digit",
    # "4-63 characters. Valid characters are /[a-z][0-9]-/ with first character a letter
    # and the last a letter or a number"; "(default)" too, which this program never uses
    "google.firestore.admin.v1.CreateDatabaseRequest.database_id",
)
ALERT_DISPLAY_NAME = NameRule(
    "alert policy or notification channel display name",
    r"(?s).{1,512}",
    "1..512 characters",
    # "The display name may not exceed 512 Unicode characters" (both fields)
    "google.monitoring.v3.AlertPolicy.display_name, NotificationChannel.display_name",
    text=True,
)
DASHBOARD_DISPLAY_NAME = NameRule(
    "dashboard display name",
    r"(?s).{1,512}",
    "1..512 characters",
    # Required; Google states no maximum for it, so the 512 of Monitoring's other display
    # names is applied
    "google.monitoring.dashboard.v1.Dashboard.display_name",
    text=True,
)
# Resource labels (cloud.google.com/resource-manager/docs/creating-managing-labels
# #requirements): keys 1..63 characters starting with a lowercase letter or an
# international character; keys and values of lowercase letters, international
# characters, digits, `_` and `-`; values 0..63; both under 128 bytes.
LABEL_KEY = NameRule(
    "label key",
    r"[\p{Ll}\p{Lo}][\p{Ll}\p{Lo}\p{N}_-]{0,62}",
    "1..63 lowercase letters, digits, '_' or '-', starting with a lowercase letter"
    " (international characters allowed), under 128 bytes",
    "resource-manager/docs/creating-managing-labels#requirements",
    max_bytes=127,
)
LABEL_VALUE = NameRule(
    "label value",
    r"[\p{Ll}\p{Lo}\p{N}_-]{0,63}",
    "0..63 lowercase letters, digits, '_' or '-' (international characters allowed), under"
    " 128 bytes",
    "resource-manager/docs/creating-managing-labels#requirements",
    max_bytes=127,
)
ALERT_USER_LABEL = NameRule(
    "alert policy user label key or value",
    r"[a-z0-9_-]{0,63}",
    "0..63 lowercase letters, digits, '_' or '-'",
    # "keys and values can contain only lowercase letters, numerals, underscores, and
    # dashes. Keys must begin with a letter"; each at most 63 characters. The program's
    # keys are fixed words (`pipeline`, `alert`); its values are checked here.
    "google.monitoring.v3.AlertPolicy.user_labels",
)

# Free text derived from names: Google documents a limit for each (the proto field comments
# in the client libraries named), and a name at its own maximum can push the text past it.
SCHEDULER_JOB_DESCRIPTION = NameRule(
    "Cloud Scheduler job description",
    r"(?s).{0,500}",
    "at most 500 characters",
    # "A human-readable description for the job. This string must not contain more than
    # 500 characters." (google-cloud-scheduler, scheduler_v1/types/job.py)
    "google.cloud.scheduler.v1.Job.description",
    text=True,
)
ALERT_CONDITION_DISPLAY_NAME = NameRule(
    "alert policy condition display name",
    r"(?s).{1,512}",
    "1..512 characters",
    # "A short name or phrase used to identify the condition in dashboards, notifications,
    # and incidents": Google states no maximum, so the policy's own 512 is applied
    "google.monitoring.v3.AlertPolicy.Condition.display_name",
    text=True,
)
ALERT_SUBJECT = NameRule(
    "alert notification subject",
    r"(?s).{0,10240}",
    "at most 10,240 bytes",
    # "The subject line may not exceed 10,240 bytes. In notifications generated by this
    # policy, the contents of the subject line after variable expansion will be truncated
    # to 255 bytes or shorter": the API's limit is enforced; a notification shows the
    # first 255 bytes, which hold the pipeline's name and the start of the schedule's
    "google.monitoring.v3.AlertPolicy.Documentation.subject",
    max_bytes=10240,
    text=True,
)
ALERT_DOCUMENTATION = NameRule(
    "alert policy documentation",
    r"(?s).{0,8192}",
    "at most 8,192 characters and 10,240 bytes",
    # "The content may not exceed 8,192 Unicode characters and may not exceed more than
    # 10,240 bytes when encoded in UTF-8 format, whichever is smaller."
    "google.monitoring.v3.AlertPolicy.Documentation.content",
    max_bytes=10240,
    text=True,
)
SERVICE_ACCOUNT_DISPLAY_NAME = NameRule(
    "service account display name",
    r"(?s).{0,100}",
    "at most 100 bytes",
    # "A user-specified, human-readable name for the service account. The maximum length
    # is 100 UTF-8 bytes." (google-cloud-iam, iam_admin_v1/types/iam.py)
    "google.iam.admin.v1.ServiceAccount.display_name",
    max_bytes=100,
    text=True,
)
LOG_METRIC_DESCRIPTION = NameRule(
    "logs-based metric description",
    r"(?s).{0,8000}",
    "at most 8,000 characters",
    # "The maximum length of the description is 8000 characters." (google-cloud-logging,
    # logging_v2/types/logging_metrics.py)
    "google.logging.v2.LogMetric.description",
    text=True,
)
LOG_METRIC_NAME = NameRule(
    "logs-based metric name",
    r"(?!/)[A-Za-z0-9_.,+!*'()%/-]{1,100}",
    "1..100 of A-Z, a-z, 0-9 and _-.,+!*',()%/, not starting with '/'",
    # "Metric identifiers are limited to 100 characters and can include only the following
    # characters: A-Z, a-z, 0-9, and the special characters _-.,+!*',()%/. The
    # forward-slash character (/) denotes a hierarchy of name pieces, and it cannot be the
    # first character of the name." (google-cloud-logging, logging_v2/types/
    # logging_metrics.py)
    "google.logging.v2.LogMetric.name",
)

BUCKET_NAME = NameRule(
    "Cloud Storage bucket name",
    # Without dots (the program never adds one): 3-63 characters.
    r"(?!goog)(?!.*(?:google|g00gle))[a-z0-9][a-z0-9_-]{1,61}[a-z0-9]",
    "3..63 lowercase letters, digits, '-' or '_', starting and ending with a letter or"
    " digit, not starting with 'goog' and not containing 'google' or 'g00gle'",
    # "Bucket names can only contain lowercase letters, numeric characters, dashes (-),
    # underscores (_), and dots (.)... must start and end with a number or letter...
    # contain 3-63 characters... cannot begin with the "goog" prefix... cannot contain
    # "google" or close misspellings, such as "g00gle"" (cloud.google.com/storage/docs/
    # buckets#naming). Bucket names are global: components/payloads.py adds a hash.
    "cloud.google.com/storage/docs/buckets#naming",
)

RULES = (
    PUBSUB_ID,
    BUCKET_NAME,
    SERVICE_ACCOUNT_ID,
    RUN_SERVICE,
    QUEUE_ID,
    FIRESTORE_DATABASE_ID,
    ALERT_DISPLAY_NAME,
    DASHBOARD_DISPLAY_NAME,
    LABEL_KEY,
    LABEL_VALUE,
    ALERT_USER_LABEL,
    SCHEDULER_JOB_DESCRIPTION,
    ALERT_CONDITION_DISPLAY_NAME,
    ALERT_SUBJECT,
    ALERT_DOCUMENTATION,
    SERVICE_ACCOUNT_DISPLAY_NAME,
    LOG_METRIC_DESCRIPTION,
    LOG_METRIC_NAME,
)

# Pulumi auto-names a resource whose `name` is unset: its logical name, `-` and 7 random
# hex digits (the bridge's AutoName: resource.NewUniqueHex(name + "-", 7, max)). Hex
# digits pass every rule above wherever a letter or digit does, so one spelling stands
# for them all.
AUTONAME_SUFFIX = "-0a1b2c3"
SHOWN_SUFFIX = "-…"
"""How an auto-name's random part is shown in an error."""

# A pipeline's alert policies, by kind (also their `alert` user label, which the policy
# pack looks for per queue), and each one's title.
BACKLOG, FAILING_ATTEMPTS, DEAD_LETTERS, CAPACITY, CLAIMS_LOST = (
    "backlog",
    "failing-attempts",
    "dead-letters",
    "capacity",
    "claims-lost",
)
ALERT_TITLES = {
    BACKLOG: "queue backlog",
    FAILING_ATTEMPTS: "failing attempts",
    DEAD_LETTERS: "dead letters waiting",
    CAPACITY: "service capacity",
    CLAIMS_LOST: "claims lost",
}
ALERT_KINDS = tuple(ALERT_TITLES)


def invoker_account(pipeline: str) -> str:
    """Component, account and account id of the identity Cloud Tasks calls the service as."""
    return f"{pipeline}-invoker"


def runtime_account(pipeline: str) -> str:
    """Component, account and account id of the identity the service runs as."""
    return f"{pipeline}-runtime"


def invoker_display_name(pipeline: str) -> str:
    return f"Cloud Tasks invoker of pipeline {pipeline}"


def runtime_display_name(pipeline: str) -> str:
    return f"Cloud Run runtime of pipeline {pipeline}"


def ticker_display_name(pipeline: str) -> str:
    """The account Cloud Scheduler calls the service as (components.names.ticker_account).

    The bootstrap creates the three accounts with these display names before the program
    adopts them (docs/gitops.md, "Service accounts and secrets"): equal names keep the
    adoption from showing a diff."""
    return f"Cloud Scheduler ticks of pipeline {pipeline}"


def dead_letters(pipeline: str) -> str:
    """The pipeline's dead-letter topic and its one subscription (different types)."""
    return f"{pipeline}-{DEAD_LETTERS}"


BUCKET_HASH_CHARS = 10


def payload_bucket(pipeline: str, unique: str) -> str:
    """The pipeline's payload bucket: bucket names are global, so the pipeline name alone
    could be taken in another project; UNIQUE (payload_bucket_name) keeps it this stack's."""
    return f"{pipeline}-payloads-{unique}"


def payload_bucket_name(project: str, stack: str, pipeline: str) -> str:
    """Unique per project, stack and pipeline (10 hex digits of their SHA-256), and stable
    across updates: the same three always give the same name."""
    digest = hashlib.sha256(f"{project}/{stack}/{pipeline}".encode()).hexdigest()
    return payload_bucket(pipeline, digest[:BUCKET_HASH_CHARS])


def alert_display_name(pipeline: str, title: str) -> str:
    """What the console lists for one of the pipeline's alert policies."""
    return f"{pipeline}: {title}"


def alert_subject(pipeline: str, title: str) -> str:
    """The subject line of an alert policy's notifications."""
    return f"cloudrun-tasks {pipeline}: {title}"


def job_id(pipeline: str, schedule: str) -> str:
    """The Cloud Scheduler job id (and logical name) of one schedule: pipeline names have
    no `_`, so the first one splits the two back."""
    return f"{pipeline}_{schedule}"


def job_description(pipeline: str, schedule: str) -> str:
    return f"Schedule {schedule} of pipeline {pipeline} (cloudrun-tasks)"


def schedule_alert_title(schedule: str) -> str:
    """The title of a schedule's failing-ticks alert policy."""
    return f"schedule {schedule} failing"


def tick_condition_display_name(pipeline: str, schedule: str) -> str:
    return f"a tick of {job_id(pipeline, schedule)} failed"


def tick_metric_description(pipeline: str) -> str:
    return f"Tick attempts of the Cloud Scheduler jobs of pipeline {pipeline}, by status."


def claims_lost_metric_description(pipeline: str) -> str:
    return (
        f"Claims the handler of pipeline {pipeline} lost to another delivery while its work"
        " ran (a task that may have run twice)."
    )


def claims_lost_condition_display_name(window: str) -> str:
    return f"a claim was lost in the last {window}"


def pipeline_ids(pipeline: str) -> list[tuple[str, NameRule, str]]:
    """(what, rule, as Google sees it) for every id and name a pipeline name becomes;
    auto-named ones end in AUTONAME_SUFFIX."""
    topic = dead_letters(pipeline) + AUTONAME_SUFFIX
    return [
        ("dead-letter topic", PUBSUB_ID, topic),
        ("dead-letter subscription", PUBSUB_ID, topic),
        ("invoker service account", SERVICE_ACCOUNT_ID, invoker_account(pipeline)),
        ("runtime service account", SERVICE_ACCOUNT_ID, runtime_account(pipeline)),
        ("Cloud Run service", RUN_SERVICE, pipeline + AUTONAME_SUFFIX),
        ("queue", QUEUE_ID, pipeline + AUTONAME_SUFFIX),
        # Its hash shown as an auto-name's suffix; the name is at most 22 + 20 characters,
        # so the 3 fewer here never change the length check's verdict.
        ("payload bucket", BUCKET_NAME, payload_bucket(pipeline, AUTONAME_SUFFIX[1:])),
        ("'pipeline' label", LABEL_VALUE, pipeline),
        ("alert policies' 'pipeline' label", ALERT_USER_LABEL, pipeline),
        *(
            ("alert policy", ALERT_DISPLAY_NAME, alert_display_name(pipeline, title))
            for title in ALERT_TITLES.values()
        ),
        *(
            ("alert notification subject", ALERT_SUBJECT, alert_subject(pipeline, title))
            for title in ALERT_TITLES.values()
        ),
        (
            "invoker account's display name",
            SERVICE_ACCOUNT_DISPLAY_NAME,
            invoker_display_name(pipeline),
        ),
        (
            "runtime account's display name",
            SERVICE_ACCOUNT_DISPLAY_NAME,
            runtime_display_name(pipeline),
        ),
        (
            "ticker account's display name",
            SERVICE_ACCOUNT_DISPLAY_NAME,
            ticker_display_name(pipeline),
        ),
        ("tick metric's description", LOG_METRIC_DESCRIPTION, tick_metric_description(pipeline)),
        ("tick metric", LOG_METRIC_NAME, tick_metric_name(pipeline)),
        ("claims-lost metric", LOG_METRIC_NAME, claims_lost_metric_name(pipeline)),
        (
            "claims-lost metric's description",
            LOG_METRIC_DESCRIPTION,
            claims_lost_metric_description(pipeline),
        ),
    ]


def schedule_ids(pipeline: str, schedule: str) -> list[tuple[str, NameRule, str]]:
    """(what, rule, text) for every text a schedule's name becomes beside its job id."""
    title = schedule_alert_title(schedule)
    return [
        ("job description", SCHEDULER_JOB_DESCRIPTION, job_description(pipeline, schedule)),
        ("alert policy", ALERT_DISPLAY_NAME, alert_display_name(pipeline, title)),
        (
            "alert condition",
            ALERT_CONDITION_DISPLAY_NAME,
            tick_condition_display_name(pipeline, schedule),
        ),
        ("alert notification subject", ALERT_SUBJECT, alert_subject(pipeline, title)),
    ]


def pipeline_problems(pipeline: str) -> list[str]:
    """Each rule of Google's that an id derived from PIPELINE breaks, one line per id."""
    return _problems(pipeline_ids(pipeline))


def schedule_problems(pipeline: str, schedule: str) -> list[str]:
    """Each rule of Google's that a text derived from SCHEDULE of PIPELINE breaks."""
    return _problems(schedule_ids(pipeline, schedule))


def _problems(ids: list[tuple[str, NameRule, str]]) -> list[str]:
    broken: dict[tuple[NameRule, str], list[str]] = {}
    for what, rule, value in ids:
        if rule.problem(value) is not None:
            broken.setdefault((rule, value), []).append(what)
    return [
        f"its {' and '.join(whats)} would be {_shown(rule, value)}:"
        f" {'an' if rule.what[0] in 'aeiou' else 'a'} {rule.what} {rule.problem(value)}"
        f" ({rule.source})"
        for (rule, value), whats in broken.items()
    ]


def _shown(rule: NameRule, value: str) -> str:
    if rule.text:
        return f"{len(value)} characters ({len(value.encode())} bytes)"
    return repr(value.replace(AUTONAME_SUFFIX, SHOWN_SUFFIX))
