"""Property tests over generated pipeline names: a name settings accept gives Google only
ids Google's rules accept (the ids the program really registers, judged by
components.name_rules and by Google's API types); a name any derived id would break is a
ConfigError naming the pipeline and the rule, before any resource is registered."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from components import name_rules as rules
from components.settings import ConfigError, parse_settings
from plan.recorder import Recording, run_program
from tests.infra.conftest import ROOT
from tests.judges.api_types import parse
from tests.judges.test_api_types import ids

IMAGE = "us-docker.pkg.dev/cloudrun/container/hello"

# Pieces that reach every rule's edges: Google's reserved prefix, digits and hyphens at
# either end, upper case and other characters, lengths around the 22 a name may have.
names = st.one_of(
    st.lists(
        st.sampled_from(["goog", "google", "g", "o", "a", "z", "0", "9", "-", "--", "ads"]),
        min_size=1,
        max_size=8,
    ).map("".join),
    st.text(alphabet="abgo019-_.A~é ", min_size=0, max_size=30),
)


def config(name: str) -> dict[str, Any]:
    return {
        "gcp:project": "acme-tasks-test",
        "gcp:region": "us-central1",
        "pipelines": {name: {"service": {"image": IMAGE}}},
    }


def outcome(name: str) -> ConfigError | None:
    try:
        parse_settings(config(name))
    except ConfigError as error:
        return error
    return None


@settings(max_examples=400, deadline=None)
@given(names)
def test_a_name_is_accepted_only_if_google_accepts_every_id_it_becomes(name: str) -> None:
    error = outcome(name)
    broken = [(what, rule) for what, rule, value in rules.pipeline_ids(name) if rule.problem(value)]
    if error is None:
        assert not broken, (name, broken)
    else:
        [problem] = error.problems
        assert problem.startswith(f"pipelines.{name}: "), problem
        # The rule is named: the config pattern, or each Google rule the name breaks with
        # its source.
        for _, rule in broken:
            if "lowercase letters, digits and hyphens" not in problem:
                assert rule.what in problem and rule.source in problem, problem


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=0, max_size=18))
def test_every_name_starting_with_goog_is_refused_for_pubsub(rest: str) -> None:
    name = "goog" + rest
    error = outcome(name)
    assert error is not None
    if not name.endswith("-"):
        [problem] = error.problems
        assert rules.PUBSUB_ID.what in problem and rules.PUBSUB_ID.source in problem, problem


def test_google_ads_is_a_config_error_before_any_resource() -> None:
    recording = Recording(project="cloudrun-tasks", stack="test")
    raw = {
        "gcp:project": "acme-tasks-test",
        "gcp:region": "us-central1",
        "cloudrun-tasks:pipelines": {
            "google-ads": {"service": {"image": IMAGE}},
            "orders": {"service": {"image": IMAGE, "timeout": "1s"}},
        },
    }
    with pytest.raises(ConfigError) as raised:
        run_program(ROOT, "test", raw, into=recording)
    assert recording.resources == []
    # Every problem of the run in one error, the pipeline and the rule named.
    assert raised.value.problems == [
        "pipelines.google-ads: its dead-letter topic and dead-letter subscription would be"
        " 'google-ads-dead-letters-…': a Pub/Sub topic or subscription id must not start"
        " with 'goog' (google.pubsub.v1.Topic.name, Subscription.name); its payload bucket"
        " would be 'google-ads-payloads-…': a Cloud Storage bucket name must be 3..63"
        " lowercase letters, digits, '-' or '_', starting and ending with a letter or digit,"
        " not starting with 'goog' and not containing 'google' or 'g00gle'"
        ' (cloud.google.com/storage/docs/buckets#naming), got "google-ads"',
        'pipelines.orders.service.timeout: must be >= dispatchDeadline (600s), got "1s"',
    ]


accepted = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz0123456789-", min_size=1, max_size=22
).filter(lambda name: outcome(name) is None)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.filter_too_much])
@given(accepted)
def test_what_an_accepted_name_registers_passes_googles_rules_and_types(name: str) -> None:
    """The program itself, under mocks: every id it registers (auto-names included) obeys
    its field's rule and every resource parses as Google's message."""
    raw = copy.deepcopy(config(name))
    raw["cloudrun-tasks:pipelines"] = raw.pop("pipelines")
    rec = run_program(ROOT, "test", raw)
    broken = [(where, value) for rule, value, where in ids(rec) if rule.problem(value)]
    assert not broken
    for resource in rec.resources:
        if resource.custom:
            parse(resource)
