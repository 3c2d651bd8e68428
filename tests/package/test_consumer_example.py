"""examples/consumer/, a program outside the package, run under mocks from a fresh
virtualenv where the package came from a wheel built from this checkout (its
requirements.txt names the repository at a tag; there is no remote to install from here)."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

from tests.package.conftest import ROOT, outside

EXAMPLE = ROOT / "examples" / "consumer"

# The recorder is this repository's (plan/), appended to the path after the venv's own
# packages: the program under test imports only cloudrun_tasks, from the wheel.
HARNESS = """
import json, sys
sys.path.append(sys.argv[2])
from pathlib import Path
from plan.recorder import run_program
recording = run_program(Path(sys.argv[1]), "dev")
import cloudrun_tasks
print(json.dumps({
    "package": cloudrun_tasks.__file__,
    "resources": [[r.type, r.name, r.parent] for r in recording.resources],
    "outputs": recording.outputs,
}))
"""

# One TaskPipeline's resources with one enqueuer, no replayers, no secrets.
PIPELINE = {
    "cloudrun-tasks:index:TaskPipeline": 1,
    "cloudrun-tasks:index:ServiceAccount": 2,
    "gcp:serviceaccount/account:Account": 2,
    "gcp:serviceaccount/iAMMember:IAMMember": 2,
    "cloudrun-tasks:index:TaskService": 1,
    "gcp:cloudrunv2/service:Service": 1,
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": 1,
    "cloudrun-tasks:index:TaskQueue": 1,
    "gcp:cloudtasks/queue:Queue": 1,
    "gcp:cloudtasks/queueIamMember:QueueIamMember": 1,
    "gcp:pubsub/topic:Topic": 1,
    "gcp:pubsub/subscription:Subscription": 1,
    "gcp:pubsub/topicIAMMember:TopicIAMMember": 1,
    "gcp:projects/iAMMember:IAMMember": 1,
    "gcp:monitoring/alertPolicy:AlertPolicy": 4,
}
# The invoices' one schedule: its job, the ticker account that calls the service, the
# grants (the agent mints the ticker's tokens, the ticker invokes, the runtime enqueues),
# and the failing-ticks log metric and alert.
SCHEDULE = {
    "cloudrun-tasks:index:Schedules": 1,
    "cloudrun-tasks:index:ServiceAccount": 1,
    "gcp:serviceaccount/account:Account": 1,
    "gcp:serviceaccount/iAMMember:IAMMember": 1,
    "gcp:cloudrunv2/serviceIamMember:ServiceIamMember": 1,
    "gcp:cloudtasks/queueIamMember:QueueIamMember": 1,
    "gcp:cloudscheduler/job:Job": 1,
    "gcp:logging/metric:Metric": 1,
    "gcp:monitoring/alertPolicy:AlertPolicy": 1,
}
STACK = {
    "cloudrun-tasks:index:ProjectApis": 1,
    "gcp:projects/service:Service": 7,
    "gcp:projects/serviceIdentity:ServiceIdentity": 2,
    "cloudrun-tasks:index:IdempotencyStore": 1,
    "gcp:firestore/database:Database": 1,
    "gcp:firestore/field:Field": 1,
}


def test_requirements_install_the_package_from_the_repository_at_a_tag() -> None:
    lines = [
        line
        for line in (EXAMPLE / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert len(lines) == 1
    assert re.fullmatch(r"cloudrun-tasks @ git\+https://\S+@v\d+\.\d+\.\d+", lines[0])


def test_example_runs_from_the_wheel_and_registers_the_expected_resources(
    installed: Path, tmp_path: Path
) -> None:
    result = outside(installed, "-c", HARNESS, str(EXAMPLE), str(ROOT), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    run = json.loads(result.stdout)
    assert "/site-packages/cloudrun_tasks/" in run["package"]
    resources = run["resources"]
    expected = Counter(STACK) + Counter({t: 2 * n for t, n in PIPELINE.items()}) + Counter(SCHEDULE)
    assert Counter(t for t, _, _ in resources) == expected
    top = sorted((t, n) for t, n, parent in resources if "::pulumi:pulumi:Stack::" in parent)
    assert top == [
        ("cloudrun-tasks:index:IdempotencyStore", "idempotency"),
        ("cloudrun-tasks:index:ProjectApis", "apis"),
        ("cloudrun-tasks:index:TaskPipeline", "invoices"),
        ("cloudrun-tasks:index:TaskPipeline", "thumbnails"),
    ]
    assert sorted(run["outputs"]["pipelines"]) == ["invoices", "thumbnails"]
    thumbnails = run["outputs"]["pipelines"]["thumbnails"]
    assert (thumbnails["location"], thumbnails["dispatchDeadline"]) == ("europe-west1", "300s")
    assert "schedules" not in thumbnails
    dunning = run["outputs"]["pipelines"]["invoices"]["schedules"]["dunning"]
    # The job's name (an id from the mocks here) holds its job id, PIPELINE_SCHEDULE.
    assert ("invoices_dunning" in dunning["job"], dunning["path"]) == (True, "/dunning")
