"""`make local`: reads the stack file, runs the loop, prints a command that works, stops cleanly."""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import cast

import pytest

from components.settings.idempotency import database_for_stack
from local.__main__ import Shared, _handler_env
from local.processes import REPO, Child
from local.stack_config import StackConfigError, read_stack, stack_output
from taskclient.pipelines import parse_pipelines
from tests.app.helpers import LOCAL_STACK, LocalRun, listening_addresses, printed_enqueue, wait_for

pytestmark = pytest.mark.timeout(120)


def test_reads_pipelines_and_locations(root: Path) -> None:
    orders, reports = read_stack(root, "dev")
    assert orders.queue == "projects/acme-local/locations/us-central1/queues/orders"
    assert (orders.dispatch_deadline, orders.max_attempts) == ("300s", 5)
    assert reports.queue == "projects/acme-local/locations/europe-west1/queues/reports"
    assert (reports.dispatch_deadline, reports.max_attempts) == ("600s", 3)


@pytest.mark.parametrize(
    ("stack_text", "message"),
    [
        ("config: {gcp:project: acme-local}", "pipelines: is required"),
        (
            "config: {gcp:project: acme-local, gcp:region: us-central1,"
            " cloudrun-tasks:pipelines: []}",
            "pipelines: must be a mapping",
        ),
        ("config: [", "not valid YAML"),
        ("config: {gcp:project: a, gcp:project: b}", "duplicate key 'gcp:project'"),
    ],
)
def test_bad_stack_files(root: Path, stack_text: str, message: str) -> None:
    (root / "Pulumi.dev.yaml").write_text(stack_text)
    with pytest.raises(StackConfigError, match=re.escape(message)):
        read_stack(root, "dev")


def test_missing_stack_file_lists_the_stacks(root: Path) -> None:
    with pytest.raises(
        StackConfigError, match=r"^--stack prod: no Pulumi.prod.yaml in .* \(stacks: dev, qa\)"
    ):
        read_stack(root, "prod")


def test_invalid_stack_starts_nothing_and_says_what_the_program_says(
    root: Path, tmp_path: Path
) -> None:
    """Before: `make local` started the emulator and handler on a config `pulumi up` refuses."""
    (root / "Pulumi.dev.yaml").write_text(
        LOCAL_STACK.replace("queue: {maxAttempts: 5}", "queue: {maxAttempts: 0}").replace(
            "cloudrun-tasks:pipelines:", "cloudrun-task:protect: false\n  cloudrun-tasks:pipelines:"
        )
    )
    state = tmp_path / "state"
    command = [sys.executable, "-m", "local", "--stack", "dev", "--root", str(root)]
    result = subprocess.run(
        [*command, "--state", str(state)], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Pulumi.dev.yaml: invalid stack config (2 problems):",
        "  cloudrun-task:protect: unknown namespace 'cloudrun-task'; did you mean"
        " cloudrun-tasks:protect? this program reads cloudrun-tasks:* and gcp:* keys",
        "  pipelines.orders.queue.maxAttempts: must be -1 (unlimited) or >= 1 and"
        " <= 2147483647, got 0",
    ]
    assert not state.exists()


def test_local_loop_end_to_end(start_local: Callable[..., LocalRun]) -> None:
    local = start_local()
    text = local.text()
    emulator_port, handler_port = (local.children[name]["port"] for name in ("emulator", "handler"))
    assert f"emulator  127.0.0.1:{emulator_port}" in text
    assert f"handler   127.0.0.1:{handler_port}" in text
    assert "max attempts per task: 3" in text
    outputs = json.loads((local.directory / "pipelines.json").read_text())
    assert sorted(outputs) == ["orders", "reports"]
    assert outputs["reports"]["serviceUrl"] == f"http://127.0.0.1:{handler_port}"
    assert f"outputs   {local.directory / 'pipelines.json'}" in text
    # The printed command, run as printed, enqueues a task...
    printed = printed_enqueue(text)
    assert printed[0] == ".venv/bin/python"
    enqueue = subprocess.run(printed, cwd=REPO, capture_output=True, text=True, timeout=60)
    assert enqueue.returncode == 0, enqueue.stderr
    short = enqueue.stdout.strip().rsplit("/", 1)[-1]

    # ...that the handler processes, and its log line shows up in `make local`'s output.
    def done_line() -> str | None:
        lines = local.text().splitlines()
        return next((line for line in lines if short in line and '"done"' in line), None)

    assert '"taskName": "' + short in wait_for(done_line, "the task in the followed log")
    os.killpg(local.process.pid, signal.SIGTERM)
    assert local.process.wait(30) == 0
    assert listening_addresses(emulator_port) == []
    assert listening_addresses(handler_port) == []


def test_stack_output_names_the_store_and_dead_letters_as_the_program_does(root: Path) -> None:
    orders, reports = read_stack(root, "dev")
    output = stack_output(
        [orders, reports],
        "http://127.0.0.1:1",
        database="tasks-dev",
        dead_letters={"orders", "reports"},
    )
    parsed = parse_pipelines(output, source="make local")
    assert parsed["orders"].dead_letter_topic == "projects/acme-local/topics/orders-dead-letters"
    assert (
        parsed["reports"].dead_letter_subscription
        == "projects/acme-local/subscriptions/reports-dead-letters"
    )
    assert parsed["orders"].firestore_database == "tasks-dev"
    # Without the emulators the client's replay says the pipeline has no subscription.
    plain = parse_pipelines(stack_output([orders], "http://127.0.0.1:1"), source="make local")
    assert plain["orders"].dead_letter_subscription is None
    assert plain["orders"].firestore_database is None
    assert database_for_stack("dev") == "tasks-dev"
    assert database_for_stack("Pre_Prod") == "tasks-pre-prod"


def test_the_handler_gets_the_stores_and_the_stack_wide_limits(root: Path, tmp_path: Path) -> None:
    orders, reports = read_stack(root, "dev")
    in_memory = Shared(None, None, None, {}, " (--in-memory)")
    tasks = Child("tasks emulator", cast(subprocess.Popen[bytes], None), tmp_path, 3333)
    # orders: 300 s, reports: 600 s. The shortest: no answer past either's budget is unheard.
    assert _handler_env([orders, reports], in_memory, tasks, None) == {
        "TASK_MAX_ATTEMPTS": "3",
        "TASK_MAX_RETRY_DURATION": "0s",
        "TASK_DISPATCH_DEADLINE": "300s",
        "TASK_CONCURRENCY": "80",
        "TASKS_EMULATOR_HOST": "127.0.0.1:3333",
    }
    firestore = Child("firestore emulator", cast(subprocess.Popen[bytes], None), tmp_path, 1111)
    pubsub = Child("pubsub emulator", cast(subprocess.Popen[bytes], None), tmp_path, 2222)
    topic = orders.dead_letter_topic
    shared = Shared(firestore, pubsub, "tasks-dev", {"orders": topic}, "")
    env = _handler_env([orders], shared, tasks, None)
    assert env == {
        "TASK_MAX_ATTEMPTS": "5",
        "TASK_MAX_RETRY_DURATION": "0s",
        "TASK_DISPATCH_DEADLINE": "300s",
        "TASK_CONCURRENCY": "80",
        "TASKS_EMULATOR_HOST": "127.0.0.1:3333",
        "FIRESTORE_EMULATOR_HOST": "127.0.0.1:1111",
        "PUBSUB_EMULATOR_HOST": "127.0.0.1:2222",
        "GOOGLE_CLOUD_PROJECT": "acme-local",
        "TASK_FIRESTORE_DATABASE": "tasks-dev",
        "TASK_DEAD_LETTER_TOPIC": "projects/acme-local/topics/orders-dead-letters",
    }


PAYLOAD_STACK = """
config:
  gcp:project: acme-local
  gcp:region: us-central1
  cloudrun-tasks:pipelines:
    orders:
      service: {image: us-docker.pkg.dev/cloudrun/container/hello}
      payloads: {enabled: true}
"""


def test_local_with_payloads_starts_the_storage_emulator_and_a_5mb_body_arrives(
    start_local: Callable[..., LocalRun], root: Path, tmp_path: Path
) -> None:
    (root / "Pulumi.big.yaml").write_text(PAYLOAD_STACK)
    local = start_local("big")
    text = local.text()
    storage = local.children["storage emulator"]
    assert listening_addresses(storage["port"]) == ["0100007F"]  # 127.0.0.1 only
    outputs = json.loads((local.directory / "pipelines.json").read_text())
    bucket = outputs["orders"]["payloadBucket"]
    assert bucket.startswith("orders-payloads-")
    assert f"payloads: bucket {bucket} on the storage emulator" in text
    body = tmp_path / "big.bin"
    body.write_bytes(os.urandom(5 * 1024 * 1024))
    printed = printed_enqueue(text)
    # The printed command names the storage emulator itself: no variable to set by hand.
    assert printed[printed.index("--storage-emulator") + 1] == f"127.0.0.1:{storage['port']}"
    command = [*printed[: printed.index("--data")], "--data-file", str(body)]
    env = {k: v for k, v in os.environ.items() if k != "STORAGE_EMULATOR_HOST"}
    enqueue = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=60, env=env)
    assert enqueue.returncode == 0, enqueue.stderr
    short = enqueue.stdout.strip().rsplit("/", 1)[-1]

    def done_line() -> str | None:
        lines = local.text().splitlines()
        return next((line for line in lines if short in line and '"done"' in line), None)

    wait_for(done_line, "the offloaded task in the followed log")
    os.killpg(local.process.pid, signal.SIGTERM)
    assert local.process.wait(30) == 0
    assert listening_addresses(storage["port"]) == []
