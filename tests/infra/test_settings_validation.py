"""The settings machinery every model shares (components/settings/validation.py): the field
validators' bounds and messages, the partial view the cross-field rules read, and the one
error that lists every problem in reading order.

The validator factories (`within`, `duration_within`, `matching`) are called here, at test
time, on bounds of the test's own: the models call them once, when they are defined."""

from __future__ import annotations

from typing import Annotated, Any

import pytest
from pydantic import Field, TypeAdapter, ValidationError

from components.durations import Duration
from components.settings import ConfigError, PipelineSettings, ServiceSettings, StackSettings
from components.settings.alerts import FailingAttemptsAlert
from components.settings.validation import (
    INVALID,
    Settings,
    check_rules,
    closest,
    describe,
    duration_within,
    known,
    matching,
    model_at,
    nested,
    partial,
    sort_key,
    validated,
    within,
)


def refusal(annotation: Any, value: Any) -> str | None:
    """The message a field of type ANNOTATION gives VALUE, or None when it takes it."""
    try:
        TypeAdapter(annotation).validate_python(value)
    except ValidationError as error:
        [detail] = error.errors()
        return detail["msg"]
    return None


@pytest.mark.parametrize(
    ("low", "high", "value", "message"),
    [
        (1, 10, 1, None),
        (1, 10, 10, None),
        (1, 10, 0, "must be >= 1 and <= 10"),
        (1, 10, 11, "must be >= 1 and <= 10"),
        # Whole bounds as written, a fraction with %g (no "0.0", no "1e+07").
        (0.5, 2.5, 2.6, "must be >= 0.5 and <= 2.5"),
        (0.0, 1.0, -0.1, "must be >= 0 and <= 1"),
        (1, 10**7, 10**7 + 1, "must be >= 1 and <= 10000000"),
    ],
)
def test_within_takes_both_bounds_and_names_them(
    low: float, high: float, value: float, message: str | None
) -> None:
    kind = float if isinstance(value, float) else int
    assert refusal(Annotated[kind, within(low, high)], value) == message


def test_within_an_open_low_bound_refuses_the_bound_itself() -> None:
    ratio = Annotated[float, within(0, 1, low_open=True)]
    assert refusal(ratio, 0.0) == "must be > 0 and <= 1"
    assert refusal(ratio, 1e-9) is None
    assert refusal(ratio, 1.0) is None
    assert refusal(ratio, 1.5) == "must be > 0 and <= 1"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("15s", None),
        ("1800s", None),
        ("14.999999999s", "must be >= 15s and <= 1800s"),
        ("1800.000000001s", "must be >= 15s and <= 1800s"),
    ],
)
def test_duration_within_takes_both_bounds_and_names_them(value: str, message: str | None) -> None:
    deadline = Annotated[
        Duration, duration_within(Duration.of_seconds(15), Duration.of_seconds(1800))
    ]
    assert refusal(deadline, value) == message


def test_duration_within_without_a_high_bound_has_none() -> None:
    backoff = Annotated[Duration, duration_within(Duration.of_seconds(1))]
    assert refusal(backoff, "1s") is None
    assert refusal(backoff, "876000h") is None
    assert refusal(backoff, "0.5s") == "must be >= 1s"


def test_matching_takes_only_a_whole_match_and_says_what_is_allowed() -> None:
    word = Annotated[str, matching(r"[a-z]+", "lowercase letters")]
    assert refusal(word, "abc") is None
    for value in ("abc1", "1abc", "", "ABC"):
        assert refusal(word, value) == "must be lowercase letters", value


class Inner(Settings):
    size: Annotated[int, within(1, 5)] = 1
    name: str


class Outer(Settings):
    limit: Annotated[int, within(1, 5)] = Field(3, alias="maxLimit")
    inner: Inner | None = None
    items: dict[str, Inner] = Field(default_factory=dict)


def test_nested_finds_a_settings_model_alone_optional_or_in_a_map() -> None:
    assert nested(Inner) == (Inner, False)
    assert nested(Inner | None) == (Inner, False)
    assert nested(dict[str, Inner]) == (Inner, True)
    assert nested(dict[str, Inner] | None) == (Inner, True)
    assert nested(int) == (None, False)
    assert nested(dict[str, int]) == (None, False)
    assert nested(int | str) == (None, False)
    assert nested(list[Inner]) == (None, False)


def test_the_partial_view_keeps_each_valid_field_and_marks_the_others() -> None:
    view = partial(
        Outer,
        {"maxLimit": 9, "inner": {"size": 2}, "items": {"a": {"name": "x", "size": 0}, "b": 3}},
    )
    assert view.limit is INVALID
    assert (view.inner.size, view.inner.name) == (2, INVALID)
    assert (view.items["a"].name, view.items["a"].size) == ("x", INVALID)
    assert view.items["b"] is INVALID


def test_the_partial_view_holds_defaults_for_missing_keys_and_reads_aliases_only() -> None:
    view = partial(Outer, {"limit": 4})
    # `limit` is the field's name, not its key: the key maxLimit is missing, so the default.
    assert (view.limit, view.inner, view.items) == (3, None, {})
    assert partial(Outer, {"maxLimit": 4}).limit == 4
    assert partial(Outer, {"items": ["a"]}).items is INVALID
    assert partial(Outer, ["maxLimit"]) is INVALID
    assert partial(Inner, {}).name is INVALID


def test_known_is_false_when_any_value_is_invalid() -> None:
    assert known(0, None, "", [])
    assert not known(1, INVALID)
    assert not known(INVALID)


def test_check_rules_reaches_every_model_in_maps_and_under_keys() -> None:
    raw = {
        "gcp:project": "acme-test",
        "gcp:region": "us-central1",
        "pipelines": {
            "a": {"service": {"image": "img", "minInstances": 3, "maxInstances": 2}},
            "b": {"service": {"image": "img"}, "queue": {"minBackoff": "9s", "maxBackoff": "1s"}},
        },
    }
    view = partial(StackSettings, raw)
    assert [(loc, message) for loc, message, _ in check_rules(StackSettings, view)] == [
        (("pipelines", "a", "service", "minInstances"), "must be <= maxInstances (2)"),
        (("pipelines", "b", "queue", "maxBackoff"), "must be >= minBackoff (9s)"),
    ]
    assert check_rules(StackSettings, INVALID) == []
    assert check_rules(StackSettings, None) == []
    # A pipelines key that is not a mapping has no pipelines to check.
    assert check_rules(StackSettings, partial(StackSettings, {**raw, "pipelines": 1})) == []


def test_check_rules_prefixes_the_key_path_it_was_given() -> None:
    view = partial(
        PipelineSettings, {"service": {"image": "i", "maxInstances": 1, "minInstances": 2}}
    )
    [(loc, _, value)] = check_rules(PipelineSettings, view, ("pipelines", "p"))
    assert (loc, value) == (("pipelines", "p", "service", "minInstances"), 2)


def test_model_at_follows_keys_aliases_and_map_entries() -> None:
    assert model_at(StackSettings, ()) is StackSettings
    assert model_at(StackSettings, ("pipelines", "orders")) is PipelineSettings
    assert model_at(StackSettings, ("pipelines", "orders", "service")) is ServiceSettings
    assert model_at(Outer, ("items", "a")) is Inner
    assert model_at(Outer, ("inner",)) is Inner
    # Through the field's key and its name alike.
    alerts = ("pipelines", "orders", "alerts")
    assert model_at(StackSettings, (*alerts, "failingAttempts")) is FailingAttemptsAlert
    assert model_at(StackSettings, (*alerts, "failing_attempts")) is FailingAttemptsAlert
    assert model_at(StackSettings, ("pipelines",)) is None
    assert model_at(StackSettings, ("nothing",)) is None
    assert model_at(StackSettings, ("protect", "x")) is None


def test_closest_names_a_near_key_and_nothing_for_a_far_one() -> None:
    assert closest("pipeline", ["labels", "pipelines", "protect"]) == "pipelines"
    assert closest("zzz", ["labels", "pipelines"]) is None
    assert closest("abcd", ["abxy"]) is None  # ratio 0.5, under the 0.6 cutoff
    assert closest("abcde", ["abcxy"]) == "abcxy"  # ratio 0.6, at the cutoff


def test_describe_each_kind_of_error() -> None:
    def line(error: dict[str, Any], secret: bool = False) -> tuple[Any, str]:
        return describe(StackSettings, error, secret)

    assert line({"loc": ("pipelines", "[key]"), "type": "string_pattern_mismatch", "msg": "m"}) == (
        ("pipelines",),
        "pipelines: m",
    )
    assert line({"loc": (), "type": "missing", "msg": "x"}) == ((), "config: is required")
    allowed = (
        "allowed keys: location, dispatchDeadline, service, queue, enqueuers, replayers,"
        " alerts, schedules, payloads"
    )
    assert line({"loc": ("pipelines", "p", "replicas"), "type": "extra_forbidden"}) == (
        ("pipelines", "p", "replicas"),
        f"pipelines.p.replicas: unknown key; did you mean replayers? {allowed}",
    )
    assert line({"loc": ("pipelines", "p", "xyzzy"), "type": "extra_forbidden"})[1] == (
        f"pipelines.p.xyzzy: unknown key; {allowed}"
    )
    assert line({"loc": ("pipelines", "prtect"), "type": "extra_forbidden", "msg": "x"}) == (
        ("pipelines", "prtect"),
        "pipelines.prtect: unknown key",
    )
    assert line({"loc": ("protect",), "type": "bool_type", "input": "y", "msg": "x"}, True) == (
        ("protect",),
        "protect: must be true or false, got [secret]",
    )
    assert line({"loc": ("p",), "type": "invalid", "input": 5, "msg": "must be 1"}) == (
        ("p",),
        "p: must be 1, got 5",
    )
    assert line({"loc": ("p",), "type": "invalid", "input": None, "msg": "must be 1"})[1] == (
        "p: must be 1"
    )
    assert line({"loc": ("p",), "type": "greater_than", "input": 5, "msg": "too big"})[1] == (
        "p: too big"
    )
    assert line({"loc": ("p",), "type": "too_short", "input": {}, "msg": "short"})[1] == "p: short"


def test_validated_reports_field_errors_rules_and_earlier_problems_sorted_by_key() -> None:
    raw = {"maxLimit": 0, "items": {"b": {"name": 1}, "a": {"size": 9}}}
    with pytest.raises(ConfigError) as caught:
        validated(Outer, raw, problems=[(("aaa",), "aaa: earlier")])
    assert caught.value.problems == [
        "aaa: earlier",
        "items.a.name: is required",
        "items.a.size: must be >= 1 and <= 5, got 9",
        "items.b.name: must be a string, got 1",
        "maxLimit: must be >= 1 and <= 5, got 0",
    ]
    assert str(caught.value) == "\n".join(
        ["invalid stack config (5 problems):", *(f"  {line}" for line in caught.value.problems)]
    )


def test_validated_with_only_earlier_problems_still_refuses() -> None:
    with pytest.raises(ConfigError) as caught:
        validated(Outer, {}, problems=[(("x",), "x: bad")])
    assert caught.value.problems == ["x: bad"]
    assert str(caught.value) == "invalid stack config (1 problem):\n  x: bad"


def test_validated_hides_values_under_secret_keys_only() -> None:
    with pytest.raises(ConfigError) as caught:
        validated(
            Outer,
            {"maxLimit": 7, "inner": {"name": "n", "size": 8}},
            secret=lambda loc: loc[:1] == ("inner",),
        )
    assert caught.value.problems == [
        "inner.size: must be >= 1 and <= 5, got [secret]",
        "maxLimit: must be >= 1 and <= 5, got 7",
    ]


def test_validated_returns_the_typed_model() -> None:
    settings = validated(Outer, {"maxLimit": 5, "items": {"a": {"name": "x"}}})
    assert (settings.limit, settings.items["a"].name, settings.items["a"].size) == (5, "x", 1)


def test_sort_key_orders_indexes_numerically_and_before_names() -> None:
    locs: list[tuple[str | int, ...]] = [("a", 10), ("a", "x"), ("a", 2), ("a",), ("B",)]
    assert sorted(locs, key=sort_key) == [("B",), ("a",), ("a", 2), ("a", 10), ("a", "x")]
