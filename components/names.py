"""Every name the program derives from config: logical resource names and account ids.

A derived name must be
- injective: two config entries never get the same name, or Pulumi registers one URN
  twice and stops half-way through a deployment;
- stable: a logical name that deployed keeps its spelling, since a new one replaces the
  resource (for an IAM member: the old grant is deleted after the new one is created).

So a name keeps the spelling it always had wherever that spelling already told entries
apart, and adds `-` and 8 hex digits of a sha256 of the original where it did not:
- A grant is `OWNER-ROLE-KEY`. A key that is an IAM member `prefix:rest`, with a prefix
  from MEMBER_PREFIXES and rest made only of KEPT characters, is spelled `prefix-rest`:
  no prefix has a hyphen, so the first hyphen ends the prefix and nothing is lost. So
  is a key of KEPT characters only (the program's own keys, such as "invoker"). Any
  other key loses characters to `-` and gets the hash of the key.
- A secret grant is `PIPELINE-secret-SECRET`. It splits back into its parts unless the
  pipeline's name itself makes "-secret-" appear early (`orders-secret-b` + `c` and
  `orders` + `b-secret-c`); those pipelines' grants get the hash of "PIPELINE/SECRET".
- Pipelines, their components and accounts are the pipeline's name, or it plus
  `-invoker`/`-runtime`: pipeline names are unique and these suffixes differ. So are a
  pipeline's dead-letter topic and subscription (`PIPELINE-dead-letters`, one of each
  type) and its runtime account's grant on the stack's database (a grant named as above,
  key "runtime").
- The stack's idempotency store and its TTL policy have fixed names (`idempotency`).
- A pipeline's schedules: one component (the pipeline's name), the identity Cloud
  Scheduler calls as (`PIPELINE-ticker`, like the other two accounts), its grants (keys
  fixed words), and per schedule a job and its alert, `PIPELINE_SCHEDULE` (plus
  `-failing-ticks`): pipeline names have no `_`, so the first `_` splits the two back.
  Its tick metric is `cloudrun-tasks-PIPELINE-ticks`, one per pipeline.
- Every pipeline's claims-lost metric is `cloudrun-tasks-PIPELINE-claims-lost`: it ends
  in `-lost`, a tick metric in `-ticks`, so the two kinds never meet.

A name that changed keeps its resource through an alias to its former spelling, unless
several entries shared that spelling: such a stack failed on the duplicate and never
deployed it. Hashes leave two ways to meet: a sha256 prefix collision, or a config that
writes out another entry's hash. `check_names` computes every name of a stack before any
resource is registered and reports those as config errors.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Set
from dataclasses import dataclass

import pulumi

from .name_rules import ALERT_KINDS, dead_letters, invoker_account, job_id, runtime_account
from .observability import claims_lost_metric_name, tick_metric_name
from .roles import (
    DATASTORE_USER,
    ENQUEUER,
    OBJECT_CREATOR,
    OBJECT_VIEWER,
    OPENID_TOKEN_CREATOR,
    PUBLISHER,
    RUN_INVOKER,
    SERVICE_ACCOUNT_USER,
    SUBSCRIBER,
)
from .settings import ConfigError, PipelineSettings, StackSettings
from .settings.pipeline import MEMBER_PREFIXES

# MEMBER_PREFIXES: the prefixes settings accept for enqueuers. None has a hyphen, which
# is what keeps `prefix-rest` injective.
KEPT = re.compile(r"[A-Za-z0-9@._-]+")
"""Characters grant keys have always kept; each run of any others became one `-`."""
_DROPPED = re.compile(r"[^A-Za-z0-9@._-]+")
_SECRET = "-secret-"

# Kinds of names that must be unique: resource types (a URN is its parent's type, its
# own type and its name) and account ids (unique in the project).
PIPELINE = "cloudrun-tasks:index:TaskPipeline"
ACCOUNT_COMPONENT = "cloudrun-tasks:index:ServiceAccount"
SERVICE_COMPONENT = "cloudrun-tasks:index:TaskService"
QUEUE_COMPONENT = "cloudrun-tasks:index:TaskQueue"
SCHEDULES_COMPONENT = "cloudrun-tasks:index:Schedules"
JOB = "gcp:cloudscheduler/job:Job"
LOG_METRIC = "gcp:logging/metric:Metric"
ACCOUNT = "gcp:serviceaccount/account:Account"
ACCOUNT_MEMBER = "gcp:serviceaccount/iAMMember:IAMMember"
SERVICE = "gcp:cloudrunv2/service:Service"
SERVICE_MEMBER = "gcp:cloudrunv2/serviceIamMember:ServiceIamMember"
QUEUE = "gcp:cloudtasks/queue:Queue"
QUEUE_MEMBER = "gcp:cloudtasks/queueIamMember:QueueIamMember"
SECRET_MEMBER = "gcp:secretmanager/secretIamMember:SecretIamMember"
ALERT_POLICY = "gcp:monitoring/alertPolicy:AlertPolicy"
CHANNELS_COMPONENT = "cloudrun-tasks:index:AlertChannels"
CHANNEL = "gcp:monitoring/notificationChannel:NotificationChannel"
DASHBOARD_COMPONENT = "cloudrun-tasks:index:StackDashboard"
DASHBOARD = "gcp:monitoring/dashboard:Dashboard"
TOPIC = "gcp:pubsub/topic:Topic"
SUBSCRIPTION = "gcp:pubsub/subscription:Subscription"
TOPIC_MEMBER = "gcp:pubsub/topicIAMMember:TopicIAMMember"
SUBSCRIPTION_MEMBER = "gcp:pubsub/subscriptionIAMMember:SubscriptionIAMMember"
PROJECT_MEMBER = "gcp:projects/iAMMember:IAMMember"
STORE_COMPONENT = "cloudrun-tasks:index:IdempotencyStore"
DATABASE = "gcp:firestore/database:Database"
TTL_FIELD = "gcp:firestore/field:Field"
PAYLOADS_COMPONENT = "cloudrun-tasks:index:PayloadBucket"
BUCKET = "gcp:storage/bucket:Bucket"
BUCKET_MEMBER = "gcp:storage/bucketIAMMember:BucketIAMMember"
ACCOUNT_ID = "account id"
# The spellings Google sees as ids (account ids, the dead-letter topic, alert kinds) live
# in components.name_rules, beside Google's rules for them.
# A schedule's one alert policy (its `alert` user label too).
FAILING_TICKS = "failing-ticks"
# Stack-wide components (__main__.py): one each, fixed names.
CHANNELS, STACK_DASHBOARD, IDEMPOTENCY = "alerts", "dashboard", "idempotency"
# The runtime account's grant on the stack's database is keyed by the account's role.
RUNTIME_KEY = "runtime"
# Keys of the schedules' grants: the ticker account may invoke the service, the Cloud
# Scheduler agent may mint the ticker's OIDC tokens.
TICKER_KEY = "ticker"
SCHEDULER_AGENT_KEY = "cloudscheduler-agent"


@dataclass(frozen=True)
class Name:
    name: str
    former: str
    """The spelling before names were made injective; `name` itself when unchanged."""

    def aliases(self, unaliased: Set[str]) -> list[pulumi.Alias] | None:
        """An alias to the former spelling, if it changed and may have deployed."""
        if self.former == self.name or self.former in unaliased:
            return None
        return [pulumi.Alias(name=self.former)]


def unaliased(names: Iterable[Name]) -> frozenset[str]:
    """Former spellings of changed names that no resource may alias: one several names
    shared never deployed, and one that is now another resource's name is taken."""
    names = list(names)
    formers = Counter(n.former for n in names)
    current = {n.name for n in names}
    return frozenset(
        n.former
        for n in names
        if n.former != n.name and (formers[n.former] > 1 or n.former in current)
    )


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _lossless(key: str) -> bool:
    prefix, colon, rest = key.partition(":")
    if colon:
        return prefix in MEMBER_PREFIXES and KEPT.fullmatch(rest) is not None
    return KEPT.fullmatch(key) is not None


def grant(owner: str, role: str, key: str) -> Name:
    """The member resource granting ROLE, on OWNER, to the member KEY stands for."""
    former = f"{owner}-{role.removeprefix('roles/').replace('.', '-')}-{_DROPPED.sub('-', key)}"
    return Name(former if _lossless(key) else f"{former}-{_digest(key)}", former)


def secret_grant(pipeline: str, secret_id: str) -> Name:
    """The runtime account's access to one secret of PIPELINE."""
    former = f"{pipeline}{_SECRET}{secret_id}"
    if (pipeline + _SECRET).find(_SECRET) == len(pipeline):
        return Name(former, former)
    return Name(f"{former}-{_digest(f'{pipeline}/{secret_id}')}", former)


def ticker_account(pipeline: str) -> str:
    """Component, account and account id of the identity Cloud Scheduler calls the
    service as, for every schedule of PIPELINE."""
    return f"{pipeline}-{TICKER_KEY}"


def schedule_job(pipeline: str, schedule: str) -> str:
    """The Cloud Scheduler job id (and logical name) of one schedule."""
    return job_id(pipeline, schedule)


def schedule_alert(pipeline: str, schedule: str) -> str:
    """The schedule's failing-ticks alert policy."""
    return f"{schedule_job(pipeline, schedule)}-{FAILING_TICKS}"


def alert_policy(pipeline: str, kind: str) -> str:
    """One of the pipeline's alert policies (components/alerts.py): kinds are fixed words."""
    return f"{pipeline}-{kind}"


def email_channel(address: str) -> str:
    """The notification channel the stack creates for one alert email address."""
    return f"{CHANNELS}-email-{address}"


def secret_ids(settings: PipelineSettings) -> dict[str, str]:
    """Each secret the service's containers read, with the first config key (under
    `service`) that reads it: the handler's `secrets.ENV`, then the app's."""
    ids: dict[str, str] = {}
    service = settings.service
    for env, ref in sorted(service.secrets.items()):
        ids.setdefault(ref.split(":")[0], f"secrets.{env}")
    for env, ref in sorted(service.app.secrets.items() if service.app is not None else []):
        ids.setdefault(ref.split(":")[0], f"app.secrets.{env}")
    return dict(sorted(ids.items()))


@dataclass(frozen=True)
class Derived:
    kind: str
    """A resource type, or ACCOUNT_ID."""
    name: Name
    path: str
    """The config key it comes from, spelled as config errors spell it."""


def pipeline_names(pipeline: str, settings: PipelineSettings) -> list[Derived]:
    """What TaskPipeline registers (components/pipeline.py), by kind and config key."""
    at = f"pipelines.{pipeline}"
    invoker, runtime = invoker_account(pipeline), runtime_account(pipeline)
    fixed = [
        (PIPELINE, pipeline),
        (SERVICE_COMPONENT, pipeline),
        (SERVICE, pipeline),
        (QUEUE_COMPONENT, pipeline),
        (QUEUE, pipeline),
        (TOPIC, dead_letters(pipeline)),
        (SUBSCRIPTION, dead_letters(pipeline)),
        *(
            (kind, account)
            for account in (invoker, runtime)
            for kind in (ACCOUNT_COMPONENT, ACCOUNT, ACCOUNT_ID)
        ),
    ]
    return [
        *(Derived(kind, Name(name, name), at) for kind, name in fixed),
        *schedule_names(pipeline, settings),
        *payload_names(pipeline, settings),
        Derived(SERVICE_MEMBER, grant(pipeline, RUN_INVOKER, "invoker"), at),
        Derived(ACCOUNT_MEMBER, grant(invoker, OPENID_TOKEN_CREATOR, "cloudtasks-agent"), at),
        Derived(TOPIC_MEMBER, grant(dead_letters(pipeline), PUBLISHER, RUNTIME_KEY), at),
        Derived(PROJECT_MEMBER, grant(pipeline, DATASTORE_USER, RUNTIME_KEY), at),
        *(
            Derived(kind, grant(owner, role, member), path)
            for member, path in task_creators(settings, at).items()
            for kind, owner, role in (
                (ACCOUNT_MEMBER, invoker, SERVICE_ACCOUNT_USER),
                (QUEUE_MEMBER, pipeline, ENQUEUER),
            )
        ),
        *(
            Derived(
                SUBSCRIPTION_MEMBER,
                grant(dead_letters(pipeline), SUBSCRIBER, member),
                f"{at}.replayers.{index}",
            )
            for index, member in enumerate(settings.replayers)
        ),
        *(
            Derived(SECRET_MEMBER, secret_grant(pipeline, secret_id), f"{at}.service.{key}")
            for secret_id, key in secret_ids(settings).items()
        ),
        *(
            Derived(
                ALERT_POLICY, Name(alert_policy(pipeline, kind), alert_policy(pipeline, kind)), at
            )
            for kind in ALERT_KINDS
        ),
        Derived(
            LOG_METRIC,
            Name(claims_lost_metric_name(pipeline), claims_lost_metric_name(pipeline)),
            f"{at}.alerts",
        ),
    ]


def schedule_names(pipeline: str, settings: PipelineSettings) -> list[Derived]:
    """What PipelineSchedules registers (components/schedule.py): nothing without schedules."""
    if not settings.schedules:
        return []
    at = f"pipelines.{pipeline}.schedules"
    ticker = ticker_account(pipeline)
    fixed = [
        (SCHEDULES_COMPONENT, pipeline),
        (LOG_METRIC, tick_metric_name(pipeline)),
        *((kind, ticker) for kind in (ACCOUNT_COMPONENT, ACCOUNT, ACCOUNT_ID)),
    ]
    return [
        *(Derived(kind, Name(name, name), at) for kind, name in fixed),
        Derived(SERVICE_MEMBER, grant(pipeline, RUN_INVOKER, TICKER_KEY), at),
        Derived(QUEUE_MEMBER, grant(pipeline, ENQUEUER, RUNTIME_KEY), at),
        Derived(ACCOUNT_MEMBER, grant(ticker, OPENID_TOKEN_CREATOR, SCHEDULER_AGENT_KEY), at),
        *(
            Derived(kind, Name(name, name), f"{at}.{schedule}")
            for schedule in settings.schedules
            for kind, name in (
                (JOB, schedule_job(pipeline, schedule)),
                (ALERT_POLICY, schedule_alert(pipeline, schedule)),
            )
        ),
    ]


def payload_names(pipeline: str, settings: PipelineSettings) -> list[Derived]:
    """What PayloadBucket registers (components/payloads.py): nothing without payloads."""
    if not settings.payloads.enabled:
        return []
    at = f"pipelines.{pipeline}.payloads"
    bucket = f"{pipeline}-payloads"
    return [
        Derived(PAYLOADS_COMPONENT, Name(bucket, bucket), at),
        Derived(BUCKET, Name(bucket, bucket), at),
        Derived(BUCKET_MEMBER, grant(bucket, OBJECT_VIEWER, RUNTIME_KEY), at),
        *(
            Derived(BUCKET_MEMBER, grant(bucket, OBJECT_CREATOR, member), path)
            for member, path in task_creators(settings, f"pipelines.{pipeline}").items()
        ),
    ]


def task_creators(settings: PipelineSettings, at: str) -> dict[str, str]:
    """Each member that creates tasks (enqueuers, then replayers), with the config key it
    comes from: a member in both lists gets one grant of each role, not two."""
    paths: dict[str, str] = {}
    for key in ("enqueuers", "replayers"):
        for index, member in enumerate(getattr(settings, key)):
            paths.setdefault(member, f"{at}.{key}.{index}")
    return paths


def stack_names(settings: StackSettings) -> list[Derived]:
    """What __main__.py registers once per stack, besides the APIs."""
    fixed = [
        (DASHBOARD_COMPONENT, STACK_DASHBOARD, "alerts"),
        (DASHBOARD, STACK_DASHBOARD, "alerts"),
        (STORE_COMPONENT, IDEMPOTENCY, "idempotency"),
        (DATABASE, IDEMPOTENCY, "idempotency"),
        (TTL_FIELD, IDEMPOTENCY, "idempotency"),
    ]
    if settings.alerts.emails:
        fixed.append((CHANNELS_COMPONENT, CHANNELS, "alerts"))
    return [
        *(Derived(kind, Name(name, name), path) for kind, name, path in fixed),
        *(
            Derived(
                CHANNEL, Name(email_channel(address), email_channel(address)), f"alerts.emails.{i}"
            )
            for i, address in enumerate(settings.alerts.emails)
        ),
    ]


@dataclass(frozen=True)
class StackNames:
    derived: tuple[Derived, ...]
    unaliased_secret_grants: frozenset[str]
    """Former secret-grant spellings not to alias. The only names whose former spellings
    meet across pipelines, so the only ones a TaskService can't judge on its own."""


def check_names(settings: StackSettings) -> StackNames:
    """Every name the stack derives, or a ConfigError naming each pair that meets."""
    derived = (
        *(
            d
            for name, pipeline in settings.pipelines.items()
            for d in pipeline_names(name, pipeline)
        ),
        *stack_names(settings),
    )
    first: dict[tuple[str, str], Derived] = {}
    problems = []
    for d in derived:
        seen = first.setdefault((d.kind, d.name.name), d)
        if seen is not d:
            kind = d.kind.rsplit(":", 1)[-1]
            problems.append(
                f"{d.path}: its {kind} name {d.name.name!r} is also derived from {seen.path}"
            )
    if problems:
        raise ConfigError(problems)
    return StackNames(derived, unaliased(d.name for d in derived if d.kind == SECRET_MEMBER))
