"""One pipeline's settings validated without running the program
(components/settings/pipeline.py): IAM members, the service/queue rules, and the defaults
resolved from other keys."""

from __future__ import annotations

import json
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter, ValidationError

from components.durations import Duration
from components.name_rules import pipeline_problems
from components.settings import ConfigError, parse_pipeline, parse_settings
from components.settings.pipeline import PipelineSettings, iam_member

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
SA = "serviceAccount:api@p.iam.gserviceaccount.com"
MEMBER_HELP = (
    "must be an IAM member such as 'serviceAccount:NAME@PROJECT.iam.gserviceaccount.com'"
    " (prefixes: serviceAccount, user, group, principal, principalSet)"
)


def pipeline(**fields: Any) -> PipelineSettings:
    return parse_pipeline({"service": {"image": IMAGE}, **fields})


def problems(**fields: Any) -> list[str]:
    fields.setdefault("service", {"image": IMAGE})
    with pytest.raises(ConfigError) as caught:
        parse_pipeline(fields)
    return caught.value.problems


def member_refusal(may: str, value: str) -> str | None:
    try:
        TypeAdapter(Annotated[str, iam_member(may)]).validate_python(value)
    except ValidationError as error:
        [detail] = error.errors()
        return detail["msg"]
    return None


@pytest.mark.parametrize(
    "member",
    [
        SA,
        "user:bob@example.com",
        "group:ops@example.com",
        "principal://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/subject/s",
        "principalSet://iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/*",
    ],
)
def test_an_iam_member_of_each_prefix_is_taken(member: str) -> None:
    assert member_refusal("do it", member) is None


@pytest.mark.parametrize(
    "member",
    ["bob@example.com", "user:", "user:bob smith", "xuser:bob", "users:bob", "domain:example.com"],
)
def test_anything_but_prefix_colon_name_is_refused_with_the_prefixes(member: str) -> None:
    assert member_refusal("do it", member) == MEMBER_HELP


@pytest.mark.parametrize("member", ["allUsers", "allAuthenticatedUsers"])
def test_a_public_member_is_refused_saying_what_it_may_not_do(member: str) -> None:
    assert member_refusal("do it", member) == (
        "public members (allUsers, allAuthenticatedUsers) may not do it"
    )


def test_replayers_are_iam_members_never_public() -> None:
    assert problems(replayers=["allUsers", "bob", SA]) == [
        "replayers.0: public members (allUsers, allAuthenticatedUsers) may not replay dead"
        ' letters, got "allUsers"',
        f'replayers.1: {MEMBER_HELP}, got "bob"',
    ]


def test_every_repeat_of_a_member_is_named() -> None:
    assert problems(replayers=[SA, "user:a@b.c", SA, SA]) == [
        f'replayers.2: is listed twice, got "{SA}"',
        f'replayers.3: is listed twice, got "{SA}"',
    ]


def test_a_duplicate_is_found_in_each_list_and_both_are_reported() -> None:
    assert problems(enqueuers=["user:a@b.c", "user:a@b.c"], replayers=[SA, SA]) == [
        'enqueuers.1: is listed twice, got "user:a@b.c"',
        f'replayers.1: is listed twice, got "{SA}"',
    ]


def test_task_creators_are_the_enqueuers_then_the_replayers_not_among_them() -> None:
    settings = pipeline(enqueuers=["user:b@x.y", SA], replayers=["user:a@x.y", SA, "group:g@x.y"])
    assert settings.task_creators == ["user:b@x.y", SA, "user:a@x.y", "group:g@x.y"]
    assert pipeline().task_creators == []


def test_a_name_google_would_refuse_is_refused_with_each_rule_it_breaks() -> None:
    config = {
        "gcp:project": "acme-test",
        "gcp:region": "us-central1",
        "pipelines": {"google-ads": {"service": {"image": IMAGE}}},
    }
    with pytest.raises(ConfigError) as caught:
        parse_settings(config)
    assert caught.value.problems == [
        f'pipelines.google-ads: {"; ".join(pipeline_problems("google-ads"))}, got "google-ads"'
    ]
    assert len(pipeline_problems("google-ads")) == 2  # the topic's rule and the bucket's


def test_the_service_timeout_defaults_to_the_deadline_and_may_not_be_shorter() -> None:
    assert pipeline(dispatchDeadline="900s").service.resolved_timeout == Duration.of_seconds(900)
    assert pipeline().service.resolved_timeout == Duration.of_seconds(600)
    same = pipeline(dispatchDeadline="900s", service={"image": IMAGE, "timeout": "900s"})
    assert same.service.resolved_timeout == Duration.of_seconds(900)
    assert problems(dispatchDeadline="900s", service={"image": IMAGE, "timeout": "899s"}) == [
        'service.timeout: must be >= dispatchDeadline (900s), got "899s"'
    ]


def test_concurrent_dispatches_default_to_the_service_capacity_capped_at_5000() -> None:
    small = pipeline(service={"image": IMAGE, "maxInstances": 3, "concurrency": 7})
    assert (small.service.capacity, small.queue.max_concurrent_dispatches) == (21, 21)
    big = pipeline(service={"image": IMAGE, "maxInstances": 100, "concurrency": 80})
    assert big.queue.max_concurrent_dispatches == 5000


def test_concurrent_dispatches_may_reach_the_capacity_and_not_beyond() -> None:
    service = {"image": IMAGE, "maxInstances": 3, "concurrency": 7}
    assert pipeline(service=service, queue={"maxConcurrentDispatches": 21}).queue == (
        pipeline(service=service).queue
    )
    assert problems(service=service, queue={"maxConcurrentDispatches": 22}) == [
        "queue.maxConcurrentDispatches: must be <= service capacity maxInstances x"
        " concurrency (21), got 22"
    ]


def test_service_and_queue_rules_skip_fields_that_failed_on_their_own() -> None:
    # A bad maxInstances: no capacity to compare against; a bad deadline: no timeout rule.
    assert problems(
        dispatchDeadline="5s",
        service={"image": IMAGE, "maxInstances": 0, "timeout": "1s"},
        queue={"maxConcurrentDispatches": 5000},
    ) == [
        'dispatchDeadline: must be >= 15s and <= 1800s, got "5s"',
        "service.maxInstances: must be >= 1 and <= 1000, got 0",
    ]
    # A service that is not a mapping: the queue alone is checked.
    assert problems(service="svc", queue={"maxConcurrentDispatches": 5000}) == [
        'service: must be a mapping, got "svc"'
    ]


def test_the_backlog_alert_defaults_to_ten_minutes_of_the_queues_rate() -> None:
    assert pipeline().alerts.backlog_threshold == 6000
    assert pipeline(queue={"maxDispatchesPerSecond": 0.5}).alerts.backlog_threshold == 300
    kept = pipeline(alerts={"backlog": {"threshold": 7}}, queue={"maxDispatchesPerSecond": 0.5})
    assert kept.alerts.backlog_threshold == 7


def test_the_location_is_kept_as_written_and_unresolved_without_a_stack() -> None:
    assert pipeline(location="europe-west1").resolved_location == "europe-west1"
    with pytest.raises(RuntimeError, match="resolved by StackSettings"):
        _ = pipeline().resolved_location


def test_several_bad_keys_give_one_line_each() -> None:
    lines = problems(
        location="europe",
        enqueuers="user:a@b.c",
        schedules={"bad name": {"cron": "0 3 * * *"}},
        payloads={"threshold": 5},
    )
    assert [line.split(":")[0] for line in lines] == [
        "enqueuers",
        "location",
        "payloads.threshold",
        "schedules.bad name",
    ]
    assert lines[1] == (
        "location: must be a region such as 'us-central1' (not a zone or multi-region),"
        f" got {json.dumps('europe')}"
    )


def test_a_threshold_needs_payloads_enabled_and_a_bad_key_skips_the_rule() -> None:
    assert problems(payloads={"threshold": 5}) == [
        "payloads.threshold: needs payloads.enabled: true, got 5"
    ]
    assert problems(payloads={"enabled": False, "threshold": 5}) == [
        "payloads.threshold: needs payloads.enabled: true, got 5"
    ]
    assert pipeline(payloads={"enabled": True, "threshold": 5}).payloads.threshold == 5
    assert problems(payloads={"enabled": "no", "threshold": 5}) == [
        'payloads.enabled: must be true or false, got "no"'
    ]
    assert problems(payloads={"enabled": False, "threshold": 0}) == [
        "payloads.threshold: must be >= 1 and <= 1000000, got 0"
    ]


def test_each_field_the_capacity_and_timeout_rules_read_may_fail_alone() -> None:
    assert problems(service={"image": IMAGE, "timeout": 60}) == [
        "service.timeout: must be a duration string such as '600s', '10m', '1.5h' or '250ms',"
        " got 60"
    ]
    assert problems(
        service={"image": IMAGE, "concurrency": 0}, queue={"maxConcurrentDispatches": 5000}
    ) == ["service.concurrency: must be >= 1 and <= 1000, got 0"]
    assert problems(queue={"maxConcurrentDispatches": 0}) == [
        "queue.maxConcurrentDispatches: must be >= 1 and <= 5000, got 0"
    ]
    # A bad queue still leaves the timeout rule, which does not read it.
    assert problems(queue="q", service={"image": IMAGE, "timeout": "1s"}) == [
        'queue: must be a mapping, got "q"',
        'service.timeout: must be >= dispatchDeadline (600s), got "1s"',
    ]
