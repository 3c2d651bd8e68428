"""Bad input and unreachable endpoints: one line on stderr naming the problem, non-zero exit."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from local.processes import REPO
from tests.app.helpers import pipeline_output

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def outputs(tmp_path: Path) -> Path:
    path = tmp_path / "pipelines.json"
    queue = "projects/p/locations/us-central1/queues/orders"
    path.write_text(json.dumps({"orders": pipeline_output(queue, "http://127.0.0.1:9")}))
    return path


def cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "taskclient", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=REPO,
        env={"PATH": "/usr/bin:/bin"},  # no TASKS_* variables, no pulumi
        check=False,
        timeout=60,
    )


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["--pipeline", "emails", "--data", "{}"], 2, "--pipeline: no pipeline 'emails'"),
        (["--pipeline", "orders", "--data", "{oops"], 2, "--data: invalid JSON"),
        (["--pipeline", "orders", "--delay", "soon"], 2, "--delay: 'soon' must be a duration"),
        (["--pipeline", "orders", "--delay", "99999999999999h"], 2, "--delay: '99999999999999h'"),
        (["--pipeline", "orders", "--delay", "1e9s"], 2, "--delay: '1e9s' must be a duration"),
        (["--pipeline", "orders", "--delay", "31d"], 2, "--delay: '31d' must be a duration"),
        (["--pipeline", "orders", "--delay", "721h"], 2, "--delay: 2595600s is more than"),
        (
            ["--pipeline", "orders", "--deadline", "0.0000000001s"],
            2,
            "--deadline: '0.0000000001s' has more than nanosecond precision",
        ),
        (["--pipeline", "orders", "--at", "tomorrow"], 2, "--at: 'tomorrow' is not ISO 8601"),
        (["--pipeline", "orders", "--at", "2030-01-01T00:00"], 2, "--at: needs a timezone"),
        (["--pipeline", "orders", "--path", "x"], 2, "--path: 'x' must start with '/'"),
        (["--pipeline", "orders", "--header", "novalue"], 2, "--header: 'novalue'"),
        (["--pipeline", "orders", "--deadline", "1h"], 2, "--deadline:"),
        (["--pipeline", "orders", "--delay", "1s", "--at", "x"], 2, "not allowed with argument"),
    ],
)
def test_bad_arguments(outputs: Path, args: list[str], code: int, message: str) -> None:
    result = cli("enqueue", "--outputs", str(outputs), "--emulator", "127.0.0.1:9", *args)
    assert result.returncode == code
    assert message in one_line_error(result)


def test_missing_required_argument_is_one_line() -> None:
    result = cli("enqueue", "--data", "{}")
    assert result.returncode == 2
    assert "the following arguments are required: --pipeline" in one_line_error(result)


def test_no_pipelines_source() -> None:
    result = cli("enqueue", "--pipeline", "orders")
    assert result.returncode == 2
    assert "pass --stack NAME or --outputs FILE, or set TASKS_PIPELINES" in one_line_error(result)


def test_stack_without_pulumi_cli() -> None:
    result = cli("enqueue", "--stack", "dev", "--pipeline", "orders")
    assert result.returncode == 2
    assert "--stack dev: the pulumi CLI is not on PATH" in one_line_error(result)


def test_unreachable_endpoint(outputs: Path) -> None:
    # Port 9 (discard) on loopback: nothing listens, the connection is refused at once.
    result = cli(
        "enqueue", "--outputs", str(outputs), "--pipeline", "orders", "--data", "{}",
        "--emulator", "127.0.0.1:9", "--retry-deadline", "1s",
    )  # fmt: skip
    assert result.returncode == 1
    line = one_line_error(result)
    assert line.startswith("error: enqueue failed: gave up retrying transient errors: 503")
    assert "127.0.0.1:9" in line


def test_bulk_bad_line_sends_nothing(outputs: Path) -> None:
    result = cli(
        "bulk", "--outputs", str(outputs), "--pipeline", "orders", "--emulator", "127.0.0.1:9",
        stdin='{"id": 1}\n{"id": 2\n',
    )  # fmt: skip
    assert result.returncode == 2
    assert "--input line 2: invalid JSON" in one_line_error(result)


def test_bulk_missing_dedup_field(outputs: Path) -> None:
    result = cli(
        "bulk", "--outputs", str(outputs), "--pipeline", "orders", "--emulator", "127.0.0.1:9",
        "--dedup-field", "id", stdin='{"id": 1}\n{"other": 2}\n',
    )  # fmt: skip
    assert result.returncode == 2
    assert "--dedup-field: line 2 has no field 'id'" in one_line_error(result)


def test_bulk_empty_input(outputs: Path) -> None:
    result = cli(
        "bulk", "--outputs", str(outputs), "--pipeline", "orders", "--emulator", "127.0.0.1:9",
        stdin="\n",
    )  # fmt: skip
    assert result.returncode == 2
    assert "--input: - has no JSON lines" in one_line_error(result)
