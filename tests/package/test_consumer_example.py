"""examples/consumer/, a program outside the package, run under mocks from a fresh
virtualenv where the package came from a wheel built from this checkout (its
requirements.txt names the repository at a tag; there is no remote to install from here).

It composes the components as Pulumi resources compose: a built image's reference, a
project and an account's member go in as Outputs; typed outputs come back out into its own
resources. The same program with those values written out registers the same resources."""

from __future__ import annotations

import json
import re
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.package.conftest import ROOT, outside

EXAMPLE = ROOT / "examples" / "consumer"

# The recorder is this repository's (plan/), appended to the path after the venv's own
# packages: the program under test imports only cloudrun_tasks, from the wheel.
HARNESS = """
import json, sys
sys.path.append(sys.argv[2])
from pathlib import Path
from plan.recorder import Recording, run_program
recording = Recording(project="platform-tasks", stack="dev")
error = None
try:
    run_program(Path(sys.argv[1]), "dev", into=recording)
except Exception as raised:
    error = f"{type(raised).__name__}: {raised}"
import cloudrun_tasks, pulumi_docker_build
print(json.dumps({
    "package": cloudrun_tasks.__file__,
    "error": error,
    "resources": [[r.type, r.name, r.parent, r.urn, r.inputs] for r in recording.resources],
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
    "gcp:monitoring/alertPolicy:AlertPolicy": 5,
    "gcp:logging/metric:Metric": 1,
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
    "cloudrun-tasks:index:StackDashboard": 1,
    "gcp:monitoring/dashboard:Dashboard": 1,
    "cloudrun-tasks:index:ProjectApis": 1,
    # The seven REQUIRED_SERVICES, and the Cloud Scheduler API the example asks for.
    "gcp:projects/service:Service": 8,
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
    assert len(lines) == 2
    assert re.fullmatch(r"cloudrun-tasks @ git\+https://\S+@v\d+\.\d+\.\d+", lines[0])
    # The docker-build provider at the version the dev lock installs for this test.
    assert lines[1] in (ROOT / "requirements-dev.in").read_text().splitlines()


# The consumer's own resources: its repository, image, billing account, archive bucket and
# the grant on it to the invoices runtime account.
OWN = {
    "gcp:artifactregistry/repository:Repository": 1,
    "docker-build:index:Image": 1,
    "gcp:serviceaccount/account:Account": 1,
    "gcp:storage/bucket:Bucket": 1,
    "gcp:storage/bucketIAMMember:BucketIAMMember": 1,
}
PROJECT = "acme-platform-dev"
BILLING = f"serviceAccount:billing-api@{PROJECT}.iam.gserviceaccount.com"
# The three Outputs the example passes in, as its source spells them.
OUTPUT_LINES = {
    "project = repository.project": None,
    "image = invoices_image.ref": "image",
    "enqueuer = billing.member": BILLING,
}


def run_example(python: Path, example: Path, cwd: Path) -> dict[str, Any]:
    result = outside(python, "-c", HARNESS, str(example), str(ROOT), cwd=cwd)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def copy_example(into: Path, **replacements: str) -> Path:
    """The example in INTO with each source line OLD replaced by NEW."""
    shutil.copytree(EXAMPLE, into)
    source = (into / "__main__.py").read_text()
    for old, new in replacements.items():
        assert source.count(old) == 1, old
        source = source.replace(old, new)
    (into / "__main__.py").write_text(source)
    return into


def one(run: dict[str, Any], type_: str, name: str) -> dict[str, Any]:
    (inputs,) = [i for t, n, _, _, i in run["resources"] if (t, n) == (type_, name)]
    return inputs


@pytest.fixture(scope="module")
def example_run(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_example(installed, EXAMPLE, tmp_path_factory.mktemp("example"))


def test_example_runs_from_the_wheel_and_registers_the_expected_resources(
    example_run: dict[str, Any],
) -> None:
    run = example_run
    assert run["error"] is None
    assert "/site-packages/cloudrun_tasks/" in run["package"]
    resources = run["resources"]
    expected = (
        Counter(STACK)
        + Counter({t: 2 * n for t, n in PIPELINE.items()})
        + Counter(SCHEDULE)
        + Counter(OWN)
    )
    assert Counter(t for t, *_ in resources) == expected
    top = sorted((t, n) for t, n, parent, *_ in resources if "::pulumi:pulumi:Stack::" in parent)
    assert [(t, n) for t, n in top if t.startswith("cloudrun-tasks:")] == [
        ("cloudrun-tasks:index:IdempotencyStore", "idempotency"),
        ("cloudrun-tasks:index:ProjectApis", "apis"),
        ("cloudrun-tasks:index:StackDashboard", "dashboard"),
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


def test_outputs_go_in_where_they_belong(example_run: dict[str, Any]) -> None:
    run = example_run
    image = one(run, "docker-build:index:Image", "invoices")
    assert image["tags"] == [f"europe-west1-docker.pkg.dev/{PROJECT}/apps/invoices:dev"]
    service = one(run, "gcp:cloudrunv2/service:Service", "invoices")
    ref = service["template"]["containers"][0]["image"]
    # The build's pushed reference: its tag and digest, from the image's Output.
    assert re.fullmatch(rf"{re.escape(image['tags'][0])}@sha256:[0-9a-f]{{64}}", ref)
    assert service["project"] == PROJECT
    enqueue = one(
        run,
        "gcp:cloudtasks/queueIamMember:QueueIamMember",
        "invoices-cloudtasks-enqueuer-enqueuers-0",
    )
    assert (enqueue["member"], enqueue["role"]) == (BILLING, "roles/cloudtasks.enqueuer")
    queue = one(run, "gcp:cloudtasks/queue:Queue", "invoices")
    assert queue["project"] == PROJECT


def test_typed_outputs_feed_the_consumers_own_resources(example_run: dict[str, Any]) -> None:
    run = example_run
    invoices = run["outputs"]["pipelines"]["invoices"]
    grant = one(
        run, "gcp:storage/bucketIAMMember:BucketIAMMember", "invoice-archive-invoices-runtime"
    )
    assert grant["member"] == "serviceAccount:" + invoices["runtimeServiceAccount"]
    assert (
        invoices["runtimeServiceAccount"] == f"invoices-runtime@{PROJECT}.iam.gserviceaccount.com"
    )
    assert grant["role"] == "roles/storage.objectCreator"
    assert run["outputs"]["invoicesQueue"] == invoices["queue"]
    assert run["outputs"]["dashboardUrl"].startswith(
        "https://console.cloud.google.com/monitoring/dashboards/builder/"
    )
    assert run["outputs"]["dashboardUrl"].endswith(f"?project={PROJECT}")
    dashboard = json.loads(
        one(run, "gcp:monitoring/dashboard:Dashboard", "dashboard")["dashboardJson"]
    )
    # The rows were built from the pipelines' typed outputs (their generated names).
    assert f'queue_id=\\"{invoices["queueName"]}\\"' in json.dumps(dashboard)


def test_written_out_values_register_the_same_resources(
    installed: Path, tmp_path: Path, example_run: dict[str, Any]
) -> None:
    ref = one(example_run, "gcp:cloudrunv2/service:Service", "invoices")["template"]["containers"][
        0
    ]["image"]
    plain = copy_example(
        tmp_path / "plain",
        **{
            "project = repository.project": f'project = "{PROJECT}"',
            "image = invoices_image.ref": f'image = "{ref}"',
            "enqueuer = billing.member": f'enqueuer = "{BILLING}"',
        },
    )
    written = run_example(installed, plain, tmp_path)
    assert written["error"] is None

    def registrations(run: dict[str, Any]) -> list[str]:
        # Name aside: the grant to a member from an Output is named by its place.
        return sorted(
            json.dumps([t, parent, inputs], sort_keys=True)
            for t, _, parent, _, inputs in run["resources"]
        )

    assert registrations(written) == registrations(example_run)
    assert written["outputs"] == example_run["outputs"]


def test_a_bad_resolved_output_is_refused_with_its_key_path(
    installed: Path, tmp_path: Path
) -> None:
    # A tag the registry would refuse (uppercase path): the built image's ref carries it.
    bad = copy_example(tmp_path / "bad", **{'"/apps/invoices:", stack': '"/apps/Invoices:", stack'})
    run = run_example(installed, bad, tmp_path)
    assert run["error"] is not None
    assert (
        "invalid args of TaskPipeline 'invoices' (1 problem):\n  args.pipeline.service.image: "
    ) in run["error"]
    assert "Invoices:dev@sha256:" in run["error"]
    # The service that would have run it was never registered; thumbnails' was.
    services = [n for t, n, *_ in run["resources"] if t == "gcp:cloudrunv2/service:Service"]
    assert "invoices" not in services
