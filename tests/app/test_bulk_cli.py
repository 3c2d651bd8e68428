"""`python -m taskclient bulk` off the happy path: every line accounted for exactly once, a
dead backend stops the run fast, signals stop it cleanly, and the report says what happened."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.cloud import tasks_v2

from bench.enqueue_faults import LoopbackServer
from local.processes import REPO, Child
from taskclient.task_builder import MAX_TASK_BYTES
from tests.app.helpers import pipeline_output

pytestmark = pytest.mark.timeout(120)


def bulk(outputs: Path, emulator: str, stdin: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable, "-m", "taskclient", "bulk", "--outputs", str(outputs),
            "--pipeline", "orders", "--emulator", emulator, *args,
        ],
        input=stdin, capture_output=True, text=True, cwd=REPO, check=False, timeout=100,
        env={"PATH": "/usr/bin:/bin"},
    )  # fmt: skip


@pytest.fixture
def fake_outputs(tmp_path: Path) -> Path:
    path = tmp_path / "pipelines.json"
    queue = "projects/p/locations/us-central1/queues/orders"
    path.write_text(json.dumps({"orders": pipeline_output(queue, "http://127.0.0.1:9")}))
    return path


@pytest.fixture
def down() -> Iterator[LoopbackServer]:
    backend = LoopbackServer("drop")
    yield backend
    backend.stop()


@pytest.fixture
def hanging() -> Iterator[LoopbackServer]:
    backend = LoopbackServer("hang")
    yield backend
    backend.stop()


@pytest.fixture
def silent() -> Iterator[str]:
    """A gRPC server on loopback that takes every CreateTask call and never answers it."""
    release = threading.Event()

    def never_answer(_request: bytes, _context: grpc.ServicerContext) -> bytes:
        release.wait(120)
        return b""

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers(
        (
            grpc.method_handlers_generic_handler(
                "google.cloud.tasks.v2.CloudTasks",
                {"CreateTask": grpc.unary_unary_rpc_method_handler(never_answer)},
            ),
        )
    )
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        release.set()
        server.stop(0)


def lines(n: int) -> str:
    return "".join(json.dumps({"id": i}) + "\n" for i in range(n))


def test_bad_lines_fail_alone_and_the_rest_is_created(
    tmp_path: Path,
    outputs_file: Path,
    emulator: Child,
    admin: tasks_v2.CloudTasksClient,
    queue: str,
) -> None:
    admin.pause_queue(name=queue)  # nothing is dispatched: tasks stay countable
    big = json.dumps({"id": "big", "blob": "x" * MAX_TASK_BYTES})
    text = (
        "\n".join(['{"id": 1}', '{"id": 2', "", "[1, 2]", '{"other": 3}', big, '{"id": 6}']) + "\n"
    )
    failed_out = tmp_path / "again.jsonl"
    result = bulk(
        outputs_file, emulator.address, text, "--dedup-field", "id", "--failed-out",
        str(failed_out), "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["lines"] == 6  # the blank line is not a task
    assert report["outcomes"] == {
        "created": 2, "already existed": 0, "failed": 4, "unknown": 0, "not sent": 0
    }  # fmt: skip
    assert [f["line"] for f in report["notCreated"]] == [2, 4, 5, 6]
    errors = result.stderr.splitlines()
    assert (
        "line 2: failed: --input line 2: invalid JSON (Expecting ',' delimiter at column 9)"
        in errors
    )
    assert "line 4: failed: --dedup-field: line 4 is not a JSON object" in errors
    assert "line 5: failed: --dedup-field: line 5 has no field 'id'" in errors
    assert any(
        e.startswith("line 6: failed: task: ") and "over Cloud Tasks' task size limit" in e
        for e in errors
    )
    assert failed_out.read_text().splitlines() == ['{"id": 2', "[1, 2]", '{"other": 3}', big]
    assert len(list(admin.list_tasks(parent=queue))) == 2


def test_empty_input_is_a_report_of_zero(outputs_file: Path, emulator: Child) -> None:
    result = bulk(outputs_file, emulator.address, "\n\n", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["lines"] == 0


def test_a_dead_backend_aborts_within_the_retry_deadline(
    tmp_path: Path, fake_outputs: Path, down: LoopbackServer
) -> None:
    """Before: each of 64 lines spent its own 60 s retry budget (119 s); 5,000 took hours.

    The run's own time, from its report: the interpreter's start-up is no part of the
    deadline, and on a loaded machine it alone can take seconds."""
    failed_out = tmp_path / "again.jsonl"
    result = bulk(
        fake_outputs, down.address, lines(2000), "--retry-deadline", "3s", "--failed-out",
        str(failed_out), "--json",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["elapsedSeconds"] < 3 + 5 + 5  # deadline + drain + a loaded machine's delays
    assert report["lines"] == 2000
    assert sum(report["outcomes"].values()) == 2000
    assert report["outcomes"]["created"] == 0
    assert report["outcomes"]["not sent"] > 1000
    assert report["stopped"].startswith(
        ("no request succeeded for 3s", "retry deadline (3s) spent and requests still fail")
    )
    assert len(failed_out.read_text().splitlines()) == 2000


def test_a_server_that_never_answers_ends_the_run_when_the_budget_is_spent(
    tmp_path: Path, fake_outputs: Path, silent: str
) -> None:
    """Before: each call waited for its own 30 s timeout whatever the budget, so
    --retry-deadline 3s ended after 31 s."""
    failed_out = tmp_path / "again.jsonl"
    result = bulk(
        fake_outputs, silent, lines(20), "--retry-deadline", "3s", "--concurrency", "4",
        "--failed-out", str(failed_out), "--json",
    )  # fmt: skip
    assert result.returncode == 3, result.stderr
    report = json.loads(result.stdout)
    assert report["elapsedSeconds"] < 3 + 5  # the budget + a loaded machine's delays
    assert report["outcomes"]["unknown"] == 4  # the calls that got no answer: may exist
    assert report["outcomes"]["not sent"] == 16
    assert report["stopped"].startswith("retry deadline (3s) spent")
    assert len(failed_out.read_text().splitlines()) == 20


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_sending_and_reports_every_line(
    tmp_path: Path, fake_outputs: Path, hanging: LoopbackServer, signum: signal.Signals, code: int
) -> None:
    source = tmp_path / "lines.jsonl"
    source.write_text(lines(100))
    command = [
        sys.executable, "-m", "taskclient", "bulk", "--outputs", str(fake_outputs),
        "--pipeline", "orders", "--emulator", hanging.address, "--json", "--concurrency", "8",
    ]  # fmt: skip
    process = subprocess.Popen(
        [*command, "--input", str(source)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},
        start_new_session=True,
    )
    try:
        # The channel connects once the interpreter has imported everything (slow on a
        # loaded machine); the 8 requests are on the wire a moment later.
        deadline = time.monotonic() + 60
        while not hanging.held and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hanging.held, "bulk never connected to the server"
        time.sleep(1)
        started = time.monotonic()
        os.kill(process.pid, signum)
        out, err = process.communicate(timeout=30)
        stopping = time.monotonic() - started
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    assert process.returncode == code, err
    # The 5 s drain, then the report and the interpreter's exit (8.2 s seen under load 44 on
    # 2 cores): bounded well under the 30 s a call on the wire would otherwise wait.
    assert stopping < 5 + 15
    report = json.loads(out)
    assert report["lines"] == 100 and sum(report["outcomes"].values()) == 100
    assert report["outcomes"]["unknown"] == 8  # the requests in flight: may exist
    assert report["outcomes"]["not sent"] == 92
    assert report["stopped"] == f"{signum.name}: stopped sending"
    assert "these tasks may exist" in err


def test_dedup_keys_of_different_values_are_different_tasks(
    outputs_file: Path, emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    """Before: the key was str(value), so 1, "1" and 1.0 (and two nulls) were one task and
    the others reported `already existed`, exit 0."""
    admin.pause_queue(name=queue)
    values = ["1", '"1"', "1.0", "true", '"true"', "null", "null", "[1]", '{"a": 1}', '""']
    text = "".join(f'{{"id": {value}, "n": {n}}}\n' for n, value in enumerate(values))
    result = bulk(outputs_file, emulator.address, text, "--dedup-field", "id", "--json")
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["outcomes"] == {
        "created": 5, "already existed": 0, "failed": 5, "unknown": 0, "not sent": 0
    }  # fmt: skip
    errors = [line for line in result.stderr.splitlines() if line.startswith("line ")]
    allowed = "a de-dup key must be a string, number or boolean (not null, an array or an object)"
    assert errors == [
        f"line 6: failed: --dedup-field: line 6: field 'id' is null; {allowed}",
        f"line 7: failed: --dedup-field: line 7: field 'id' is null; {allowed}",
        f"line 8: failed: --dedup-field: line 8: field 'id' is [1]; {allowed}",
        f"line 9: failed: --dedup-field: line 9: field 'id' is {{\"a\": 1}}; {allowed}",
        "line 10: failed: --dedup-field: line 10: field 'id' is an empty string",
    ]
    assert len(list(admin.list_tasks(parent=queue))) == 5
    # The same lines again: each keyed value finds its own task.
    again = bulk(outputs_file, emulator.address, text, "--dedup-field", "id", "--json")
    assert json.loads(again.stdout)["outcomes"]["already existed"] == 5


def test_lines_are_split_on_newlines_only(
    tmp_path: Path,
    outputs_file: Path,
    emulator: Child,
    admin: tasks_v2.CloudTasksClient,
    queue: str,
) -> None:
    """Before: str.splitlines() also split on U+2028, U+2029 and U+0085, which JSON strings
    may hold raw: line 1 became two bad lines, every later number was off and --failed-out
    held fragments."""
    admin.pause_queue(name=queue)
    first = json.dumps({"id": 1, "note": "a\u2028b\u2029c\x85d"}, ensure_ascii=False)
    text = f'{first}\n{{"id": 2\r\n{{"id": 3}}\r\n\u2028\n'
    failed_out = tmp_path / "again.jsonl"
    result = bulk(
        outputs_file, emulator.address, text, "--dedup-field", "id", "--failed-out",
        str(failed_out), "--json",
    )  # fmt: skip
    assert result.returncode == 1, result.stderr
    report = json.loads(result.stdout)
    assert report["lines"] == 4
    assert [f["line"] for f in report["notCreated"]] == [2, 4]
    assert failed_out.read_bytes().decode() == '{"id": 2\r\n\u2028\n'
    tasks = admin.list_tasks(request={"parent": queue, "response_view": tasks_v2.Task.View.FULL})
    bodies = sorted(json.loads(task.http_request.body)["id"] for task in tasks)
    assert bodies == [1, 3]
