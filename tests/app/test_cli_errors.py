"""Bad input and unreachable endpoints: one line on stderr naming the problem, non-zero exit."""

import json
import socket
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


@pytest.mark.parametrize(
    ("address", "message"),
    [
        ("127.0.0.1:", "--emulator: '127.0.0.1:' is not HOST:PORT with a port 1..65535"),
        ("127.0.0.1:99999", "--emulator: '127.0.0.1:99999' is not HOST:PORT"),
        ("127.0.0.1:0", "--emulator: '127.0.0.1:0' is not HOST:PORT"),
        ("::1:8123", "--emulator: '::1:8123' is not HOST:PORT"),
        ("[::1::]:8123", "--emulator: '[::1::]:8123': ::1:: is not an IPv6 address"),
        (
            "127.0.0.1:9",
            "--emulator: nothing answers at 127.0.0.1:9 within 5s (Connection refused)",
        ),
    ],
)
def test_emulator_address_is_checked_before_any_work(
    outputs: Path, address: str, message: str
) -> None:
    """Before: `127.0.0.1:` silently meant port 443, and 99999 wrapped around."""
    result = cli(
        "enqueue", "--outputs", str(outputs), "--pipeline", "orders", "--data", "{}",
        "--emulator", address,
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"error: {message}")


def test_a_payload_bucket_with_a_local_emulator_names_the_missing_storage_emulator(
    tmp_path: Path,
) -> None:
    """Before: "no Google credentials found ... or pass --emulator", with --emulator given."""
    queue = "projects/p/locations/us-central1/queues/orders"
    entry = {**pipeline_output(queue, "http://127.0.0.1:9"), "payloadBucket": "orders-payloads-1"}
    outputs = tmp_path / "pipelines.json"
    outputs.write_text(json.dumps({"orders": entry}))
    with socket.create_server(("127.0.0.1", 0)) as listening:
        emulator = f"127.0.0.1:{listening.getsockname()[1]}"
        result = cli(
            "enqueue", "--outputs", str(outputs), "--pipeline", "orders", "--data", "{}",
            "--emulator", emulator,
        )  # fmt: skip
    assert result.returncode == 2
    assert one_line_error(result) == (
        "error: --storage-emulator: pipeline 'orders' has a payload bucket (orders-payloads-1)"
        " and --emulator is a local Cloud Tasks emulator: its big bodies go to a local storage"
        " emulator too; pass --storage-emulator HOST:PORT (make local prints it) or set"
        " STORAGE_EMULATOR_HOST"
    )
    # Given, it is checked like the other emulators' addresses.
    with socket.create_server(("127.0.0.1", 0)) as listening:
        emulator = f"127.0.0.1:{listening.getsockname()[1]}"
        result = cli(
            "enqueue", "--outputs", str(outputs), "--pipeline", "orders", "--data", "{}",
            "--emulator", emulator, "--storage-emulator", "127.0.0.1:9",
        )  # fmt: skip
    assert result.returncode == 2
    assert one_line_error(result).startswith(
        "error: --storage-emulator: nothing answers at 127.0.0.1:9"
    )


def test_non_utf8_outputs_and_input(tmp_path: Path, outputs: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(b'{"orders": "caf\xe9"}')
    result = cli("enqueue", "--outputs", str(bad), "--pipeline", "orders")
    assert result.returncode == 2
    assert one_line_error(result) == f"error: --outputs: {bad} is not UTF-8 (byte 15)"
    lines = tmp_path / "lines.jsonl"
    lines.write_bytes(b'{"id": "\xff"}\n')
    result = cli(
        "bulk", "--outputs", str(outputs), "--pipeline", "orders", "--input", str(lines),
        "--emulator", "127.0.0.1:9",
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line_error(result) == f"error: --input: {lines} is not UTF-8 (byte 8)"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--concurrency", "0"], "--concurrency: 0 must be 1..1000"),
        (["--retry-deadline", "0s"], "--retry-deadline: must be more than 0s"),
        (["--retry-deadline", "1e3s"], "--retry-deadline: '1e3s' must be a duration"),
    ],
)
def test_bulk_arguments(outputs: Path, args: list[str], message: str) -> None:
    result = cli(
        "bulk", "--outputs", str(outputs), "--pipeline", "orders", "--emulator", "127.0.0.1:9",
        *args, stdin='{"id": 1}\n',
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"error: {message}")


def test_wrong_stack_lists_the_stacks(tmp_path: Path) -> None:
    fake = tmp_path / "pulumi"
    fake.write_text(
        "#!/bin/sh\n"
        'if [ "$2" = "ls" ]; then echo \'[{"name": "dev"}, {"name": "prod"}]\'; exit 0; fi\n'
        "echo 'error: no stack named qa found' >&2; exit 255\n"
    )
    fake.chmod(0o755)
    result = subprocess.run(
        [sys.executable, "-m", "taskclient", "enqueue", "--stack", "qa", "--pipeline", "orders"],
        capture_output=True, text=True, cwd=REPO, check=False, timeout=60,
        env={"PATH": f"{tmp_path}:/usr/bin:/bin"},
    )  # fmt: skip
    assert result.returncode == 2
    assert one_line_error(result) == (
        "error: --stack qa: `pulumi stack output` failed: error: no stack named qa found;"
        " stacks: dev, prod"
    )
