"""Bodies Python's json can't hold (an integer over 4,300 digits, nesting 100,000 deep) are
a line's own failure in `bulk`, and one clear error for `enqueue --data`: never a traceback,
never the good lines' loss."""

import json
from pathlib import Path

import pytest
from google.cloud import tasks_v2

from local.processes import Child
from tests.app.test_bulk_cli import bulk
from tests.app.test_cli_errors import cli, one_line_error, outputs  # noqa: F401 (fixture)

pytestmark = pytest.mark.timeout(120)

HUGE = '{"n": ' + "7" * 5000 + "}"
DEEP = "[" * 100_000 + "]" * 100_000
# One command-line argument holds at most 128 KiB (Linux MAX_ARG_STRLEN).
DEEP_ARG = "[" * 50_000 + "]" * 50_000


def test_lines_python_cannot_hold_fail_alone_and_the_good_lines_go(
    outputs_file: Path, emulator: Child, admin: tasks_v2.CloudTasksClient, queue: str
) -> None:
    # Issue 27.9: one such line gave a traceback and exit 1, and nothing was sent.
    admin.pause_queue(name=queue)  # nothing is dispatched: tasks stay countable
    text = "\n".join(['{"id": 1}', HUGE, '{"id": 3}', DEEP, '{"id": 5}']) + "\n"
    result = bulk(outputs_file, emulator.address, text, "--json")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    report = json.loads(result.stdout)
    assert report["outcomes"]["created"] == 3 and report["outcomes"]["failed"] == 2
    assert [f["line"] for f in report["notCreated"]] == [2, 4]
    errors = result.stderr.splitlines()
    assert any(
        e.startswith("line 2: failed: --input line 2: JSON Python can't hold") for e in errors
    )
    assert "line 4: failed: --input line 4: JSON Python can't hold (nested too deeply)" in errors
    assert len(list(admin.list_tasks(parent=queue))) == 3


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (HUGE, "--data: JSON Python can't hold (Exceeds the limit (4300 digits)"),
        (DEEP_ARG, "--data: JSON Python can't hold (nested too deeply)"),
    ],
)
def test_enqueue_data_python_cannot_hold_is_one_clear_error(
    outputs: Path,  # noqa: F811
    data: str,
    message: str,
) -> None:
    result = cli("enqueue", "--outputs", str(outputs), "--pipeline", "orders", "--data", data)
    assert result.returncode == 2
    assert one_line_error(result).startswith(f"error: {message}")
