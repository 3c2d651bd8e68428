"""Free text the program derives from names (descriptions, display names, notification
subjects, runbooks, labels) stays within Google's documented limits (components/
name_rules.py, each rule with its source), or the config is refused up front with the key
path, every problem at once.

Judged on what the program registers under mocks, not on the builders: each text field of
each registered type is checked against its rule (tests/judges/test_api_types.py's `ids`).
Names are generated at and near their own maximum lengths (pipeline 22, schedule 477
characters), where the texts are longest.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import name_rules as r
from components.settings import ConfigError, parse_settings
from components.settings.schedule import MAX_SCHEDULE_NAME
from plan.recorder import RecordedResource, Recording, run_program
from tests.judges.test_api_types import ids

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"
MAX_PIPELINE = 22
# Longest project id (6..30) and a long region: they reach the runbooks and subjects' links.
PROJECT = "a" * 29 + "z"
REGION = "northamerica-northeast2"


def over_limit(recording: Recording) -> list[str]:
    """Every text (and id) the recording gives Google that breaks its rule; which field
    has which rule is tests/judges/test_api_types.py's `ids`."""
    return [
        f"{where}: {rule.what} {problem}"
        for rule, value, where in ids(recording)
        if (problem := rule.problem(value)) is not None
    ]


def config(pipeline: str, schedules: list[str], email: str = "oncall@acme.example") -> dict:
    return {
        "gcp:project": PROJECT,
        "gcp:region": REGION,
        "cloudrun-tasks:alerts": {"emails": [email]},
        "cloudrun-tasks:pipelines": {
            pipeline: {
                "service": {"image": IMAGE},
                "schedules": {s: {"cron": "0 3 * * *"} for s in schedules},
            }
        },
    }


def refused(raw: dict[str, Any]) -> list[str] | None:
    """The config error's lines, or None when the settings accept RAW."""
    try:
        parse_settings({k.removeprefix("cloudrun-tasks:"): v for k, v in raw.items()})
    except ConfigError as error:
        return str(error).splitlines()[1:]
    return None


def longest_fitting_schedule(pipeline: str) -> int:
    """The longest schedule name whose every text fits, found by asking the rules."""
    return max(
        n for n in range(1, MAX_SCHEDULE_NAME + 1) if not r.schedule_problems(pipeline, "s" * n)
    )


# --- the two strings ------------------------------------------------------------


def test_a_schedule_at_its_own_maximum_is_refused_naming_each_text() -> None:
    """A 22-character pipeline and a 477-character schedule: the job description (538 >
    500) and the alert display name (518 > 512), found by the review, plus the condition,
    all in one error on the schedule's key."""
    pipeline, schedule = "p" * MAX_PIPELINE, "s" * MAX_SCHEDULE_NAME
    lines = refused(config(pipeline, [schedule, "ok"]))
    assert lines is not None
    key = f"pipelines.{pipeline}.schedules.{schedule}: "
    expected = [
        "its job description would be 538 characters",
        "its alert policy would be 518 characters",
        "its alert condition would be 517 characters",
    ]
    assert len(lines) == len(expected)
    for line, start in zip(lines, expected, strict=True):
        assert line.strip().startswith(key + start), line[:200]
    assert "(google.cloud.scheduler.v1.Job.description)" in lines[0]
    assert "must be 1..512 characters" in lines[1]


def test_the_longest_fitting_schedule_is_accepted_and_registers_within_limits() -> None:
    pipeline = "p" * MAX_PIPELINE
    n = longest_fitting_schedule(pipeline)
    assert n < MAX_SCHEDULE_NAME
    raw = config(pipeline, ["s" * n])
    assert refused(raw) is None
    assert refused(config(pipeline, ["s" * (n + 1)])) is not None
    recording = run_program_raw(raw)
    assert recording.of_type("gcp:cloudscheduler/job:Job")
    assert over_limit(recording) == []


def run_program_raw(raw: dict[str, Any]) -> Recording:
    from tests.infra.conftest import ROOT

    return run_program(ROOT, "test", raw)


def test_a_text_past_its_limit_is_caught_by_the_check() -> None:
    """The check itself can fail: a registered description one character too long."""
    recording = run_program_raw(config("orders", ["nightly"]))
    [job] = recording.of_type("gcp:cloudscheduler/job:Job")
    long = {**job.outputs, "description": "d" * 501}
    bad = Recording(project="p", stack="s", resources=[_with_inputs(job, long)])
    assert over_limit(bad) == [
        f"{job.type} {job.name}: Cloud Scheduler job description must be at most 500 characters"
    ]


def _with_inputs(resource: RecordedResource, inputs: dict[str, Any]) -> RecordedResource:
    import dataclasses

    return dataclasses.replace(resource, outputs=inputs)


# --- generated names at their maximum lengths -------------------------------------------

pipeline_names = st.integers(min_value=MAX_PIPELINE - 3, max_value=MAX_PIPELINE).flatmap(
    lambda n: st.from_regex(rf"[a-z][a-z0-9]{{{n - 1}}}", fullmatch=True)
)
schedule_names = st.integers(min_value=MAX_SCHEDULE_NAME - 60, max_value=MAX_SCHEDULE_NAME).flatmap(
    lambda n: st.from_regex(rf"[A-Za-z0-9-]{{{n}}}", fullmatch=True)
)
# A long address: the channel's display name carries it.
emails = st.integers(min_value=40, max_value=60).map(lambda n: "o" * n + "@acme.example")


@settings(
    max_examples=12,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.large_base_example],
)
@given(pipeline_names, st.lists(schedule_names, min_size=1, max_size=2, unique=True), emails)
def test_generated_names_are_refused_up_front_or_registered_within_limits(
    pipeline: str, schedules: list[str], email: str
) -> None:
    raw = config(pipeline, schedules, email)
    lines = refused(raw)
    too_long = [s for s in schedules if r.schedule_problems(pipeline, s)]
    if lines is not None:
        # Refused for the schedules whose texts don't fit, each on its own key.
        assert too_long
        keys = {re.match(r"\s*(pipelines\.[^:]+):", line).group(1) for line in lines}  # type: ignore[union-attr]
        assert keys == {f"pipelines.{pipeline}.schedules.{s}" for s in too_long}
        return
    assert too_long == []
    assert over_limit(run_program_raw(raw)) == []


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_the_stack_files_register_every_text_within_limits(stack: str) -> None:
    from tests.infra.conftest import ROOT

    assert over_limit(run_program(ROOT, stack)) == []


def test_the_generated_lengths_reach_both_verdicts() -> None:
    """The property test above sees accepted and refused schedules: the longest fitting
    name lies inside the lengths it generates, for the shortest and longest pipelines."""
    for pipeline in ("p" * (MAX_PIPELINE - 3), "p" * MAX_PIPELINE):
        assert MAX_SCHEDULE_NAME - 60 <= longest_fitting_schedule(pipeline) < MAX_SCHEDULE_NAME
