"""One delivery's headers read into a TaskRequest: counts and times parsed strictly, the
queue cut to its id, the replay header's key rules, and the body decoded or refused."""

from __future__ import annotations

import time

import pytest

from handler.task import MalformedTask, TaskRequest, decode_payload, parse_task

BASE = {"x-cloudtasks-taskname": "t-1", "x-cloudtasks-queuename": "orders"}


def parsed(**headers: str) -> TaskRequest:
    return parse_task({**BASE, **headers}, "/p", b"")


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-cloudtasks-taskname": "t"},
        {"x-cloudtasks-queuename": "q"},
        {**BASE, "x-cloudtasks-taskname": ""},
    ],
)
def test_without_a_task_and_queue_name_it_is_not_a_delivery(headers: dict[str, str]) -> None:
    with pytest.raises(MalformedTask) as raised:
        parse_task(headers, "/", b"")
    assert str(raised.value) == (
        "missing X-CloudTasks-TaskName/QueueName: not a Cloud Tasks delivery"
    )


def test_the_headers_are_read_and_the_queue_cut_to_its_id() -> None:
    task = parse_task(
        {
            **BASE,
            "x-cloudtasks-queuename": "projects/p/locations/l/queues/emails",
            "x-cloudtasks-taskretrycount": " 3 ",
            "x-cloudtasks-taskexecutioncount": "2",
            "x-cloudtasks-tasketa": "1700000000.123456789",
        },
        "/a b",
        b"{}",
        "/a%20b?x=1",
    )
    assert (task.name, task.queue, task.retry_count, task.execution_count) == (
        "t-1",
        "emails",
        3,
        2,
    )
    assert task.eta == 1700000000.123456789
    assert (task.path, task.target, task.body) == ("/a b", "/a%20b?x=1", b"{}")
    assert task.key == "emails/t-1"
    # The queue as Cloud Tasks names it, or its id alone.
    assert parsed().queue == "orders"


def test_the_method_is_the_requests_and_post_unless_told() -> None:
    assert parsed().method == "POST"
    assert parse_task(BASE, "/p", b"", "/p", "PUT").method == "PUT"


def test_without_a_raw_target_the_path_is_the_target() -> None:
    assert parse_task(BASE, "/p", b"").target == "/p"
    assert parse_task(BASE, "/p", b"", "").target == "/p"
    assert TaskRequest("t", "q", 0, 0, None, "/x", {}, b"").target == "/x"


@pytest.mark.parametrize(
    ("raw", "count"),
    [
        ("999999999", 999999999),
        ("0", 0),
        ("1234567890", 0),
        ("-1", 0),
        ("1.5", 0),
        ("nan", 0),
        ("1e400", 0),
        ("٣", 0),
        ("", 0),
    ],
)
def test_counts_are_nine_ascii_digits_or_zero(raw: str, count: int) -> None:
    task = parsed(**{"x-cloudtasks-taskretrycount": raw, "x-cloudtasks-taskexecutioncount": raw})
    assert (task.retry_count, task.execution_count) == (count, count)


@pytest.mark.parametrize(
    ("raw", "eta"),
    [
        ("999999999999.999999999", 999999999999.999999999),
        ("1700000000", 1700000000.0),
        (" 5.5 ", 5.5),
        ("1234567890123", None),
        ("1.1234567890", None),
        ("1.", None),
        ("inf", None),
        ("nan", None),
        ("-1", None),
        ("\u0661\u0667", None),  # Arabic-Indic 17: float() reads it, the header may not
        ("", None),
    ],
)
def test_the_eta_is_a_plain_decimal_or_unknown(raw: str, eta: float | None) -> None:
    assert parsed(**{"x-cloudtasks-tasketa": raw}).eta == eta


def test_time_left_counts_down_to_the_answer_deadline() -> None:
    assert TaskRequest("t", "q", 0, 0, None, "/", {}, b"").time_left() is None
    left = TaskRequest("t", "q", 0, 0, None, "/", {}, b"", answer_by=time.monotonic() + 100)
    assert 90 < (left.time_left() or 0) <= 100
    past = TaskRequest("t", "q", 0, 0, None, "/", {}, b"", answer_by=time.monotonic() - 5)
    assert (past.time_left() or 0) <= -5


def task(replay_of: str | None = None, unmatched: bool = False) -> TaskRequest:
    headers = {} if replay_of is None else {"x-replay-of": replay_of}
    return TaskRequest("t-2", "orders", 0, 0, None, "/", headers, b"", replay_unmatched=unmatched)


@pytest.mark.parametrize(
    ("replay_of", "unmatched", "queue", "forged", "stands_for", "key"),
    [
        (None, False, None, False, False, "orders/t-2"),
        ("  ", False, None, False, False, "orders/t-2"),
        ("t-1", False, "orders", False, True, "orders/t-1"),
        (" orders/t-1 ", False, "orders", False, True, "orders/t-1"),
        ("emails/t-1", False, "emails", True, False, "orders/t-2"),
        ("orders/t-1", True, "orders", False, False, "orders/t-2"),
        ("t-1", True, "orders", False, False, "orders/t-2"),
    ],
)
def test_a_replay_stands_for_its_original_only_on_its_own_queue_with_a_dead_letter(
    replay_of: str | None,
    unmatched: bool,
    queue: str | None,
    forged: bool,
    stands_for: bool,
    key: str,
) -> None:
    replay = task(replay_of, unmatched)
    assert replay.replayed_queue == queue
    assert replay.forged_replay is forged
    assert replay.stands_for is stands_for
    assert replay.key == key
    expected_of = None if replay_of is None or not replay_of.strip() else replay_of.strip()
    assert replay.replay_of == expected_of


def json_task(body: bytes, content_type: str = "application/json") -> TaskRequest:
    return TaskRequest("t", "q", 0, 0, None, "/", {"content-type": content_type}, body)


@pytest.mark.parametrize(
    "content_type", ["application/json", " Application/JSON ; charset=utf-8", "APPLICATION/JSON"]
)
def test_a_json_body_is_decoded_whatever_the_types_case_and_parameters(content_type: str) -> None:
    assert decode_payload(json_task(b'{"a": [1, "x"]}', content_type)) == {"a": [1, "x"]}


@pytest.mark.parametrize("content_type", ["text/plain", "application/jsonx", "", "json"])
def test_other_types_are_not_decoded(content_type: str) -> None:
    assert decode_payload(json_task(b"{not json", content_type)) is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"{not json", "body is not valid JSON: Expecting property name enclosed in double"),
        (b'"\xff"', "body is not valid JSON: 'utf-8' codec can't decode"),
        (b"1" * 5000, "body is JSON this handler cannot read: Exceeds the limit (4300 digits)"),
        (b"[" * 100_000 + b"]" * 100_000, "body is JSON nested too deeply to decode"),
    ],
)
def test_a_body_that_cannot_be_read_is_malformed(body: bytes, message: str) -> None:
    with pytest.raises(MalformedTask) as raised:
        decode_payload(json_task(body))
    assert str(raised.value).startswith(message)


def test_content_type_is_empty_when_not_sent() -> None:
    assert TaskRequest("t", "q", 0, 0, None, "/", {}, b"").content_type == ""
