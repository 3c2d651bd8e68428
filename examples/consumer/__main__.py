"""A program of its own that uses the cloudrun-tasks components: two pipelines, their
project APIs, one idempotency store and a dashboard, composed as any Pulumi resources are.

- Inputs: the invoices handler's image is built and pushed here, and its reference (an
  Output) goes straight into the pipeline; so do the project (read from the Artifact
  Registry repository this program owns) and the billing API's own service account, made
  here, as an enqueuer. The components check those values when they resolve, with the
  same messages as plain values.
- Outputs: the pipelines' typed outputs feed resources of this program: a grant to the
  invoices runtime account on an archive bucket, the dashboard's rows, the exports.
Nothing here comes from stack-file loading: the components check their args themselves.
"""

import pulumi
import pulumi_docker_build as docker_build
import pulumi_gcp as gcp
from cloudrun_tasks import (
    DashboardPipelineInputs,
    IdempotencyStore,
    PipelineInputs,
    ProjectApis,
    StackDashboard,
    TaskPipeline,
)

config = pulumi.Config("gcp")
region = config.require("region")
stack = pulumi.get_stack()

# This program's Docker repository in Artifact Registry; the components get the project
# from it, as an Output (as they would from a project this program created).
repository = gcp.artifactregistry.Repository(
    "apps",
    project=config.require("project"),
    location=region,
    repository_id="apps",
    format="DOCKER",
)
project = repository.project

# The invoices handler, built from this repository's handler/ and pushed. Built with
# pulumi-docker-build: Pulumi's own provider for BuildKit (buildx) builds, the successor
# of pulumi-docker's Image; its `ref` is the pushed tag with the build's digest, so Cloud
# Run runs exactly this build, and a new build is a new revision.
invoices_image = docker_build.Image(
    "invoices",
    context=docker_build.BuildContextArgs(location="../../handler"),
    platforms=[docker_build.Platform.LINUX_AMD64],
    push=True,
    tags=[
        pulumi.Output.concat(
            repository.location, "-docker.pkg.dev/", project, "/apps/invoices:", stack
        )
    ],
)
image = invoices_image.ref

# The billing API's own account: it enqueues invoices.
billing = gcp.serviceaccount.Account(
    "billing", project=project, account_id="billing-api", display_name="Billing API"
)
enqueuer = billing.member

# Cloud Scheduler for the invoices' nightly dunning run (its service agent comes with it).
apis = ProjectApis(
    "apis", {"project": project, "extra_services": ["cloudscheduler.googleapis.com"]}
)
after_apis = pulumi.ResourceOptions(depends_on=[apis])
store = IdempotencyStore(
    "idempotency",
    {"project": project, "database": f"platform-{stack}", "location": "eur3"},
    after_apis,
)

PIPELINES: dict[str, PipelineInputs] = {
    "invoices": {
        "service": {"image": image, "max_instances": 4},
        "queue": {"max_dispatches_per_second": 20, "max_attempts": 10},
        "enqueuers": [enqueuer],
        "schedules": {
            "dunning": {"cron": "0 6 * * 1-5", "time_zone": "Europe/Berlin", "path": "/dunning"}
        },
    },
    "thumbnails": {
        "dispatch_deadline": "300s",
        "service": {"image": "europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0", "memory": "1Gi"},
        "enqueuers": ["serviceAccount:uploads@acme-platform-dev.iam.gserviceaccount.com"],
    },
}

pipelines = {
    name: TaskPipeline(
        name,
        {
            "project": project,
            "pipeline": settings,
            "cloudtasks_agent_member": apis.cloudtasks_agent_member,
            "database": store.database_id,
            "cloudscheduler_agent_member": apis.cloudscheduler_agent_member,
        },
        after_apis,
    )
    for name, settings in PIPELINES.items()
}

# The invoices handler archives each sent invoice: its runtime account (a typed output)
# may create objects in this program's bucket, and nothing more.
archive = gcp.storage.Bucket(
    "invoice-archive",
    project=project,
    location=region.upper(),
    uniform_bucket_level_access=True,
    public_access_prevention="enforced",
)
gcp.storage.BucketIAMMember(
    "invoice-archive-invoices-runtime",
    bucket=archive.name,
    role="roles/storage.objectCreator",
    member=pulumi.Output.concat("serviceAccount:", pipelines["invoices"].runtime_service_account),
)

rows: list[DashboardPipelineInputs] = [
    {
        "name": name,
        "location": p.location,
        "queue_name": p.queue_name,
        "service_name": p.service_name,
        "dead_letter_subscription": p.dead_letter_subscription,
        "max_instances": PIPELINES[name]["service"].get("max_instances", 10),
        "schedules": list(PIPELINES[name].get("schedules", {})),
    }
    for name, p in pipelines.items()
]
dashboard = StackDashboard("dashboard", {"project": project, "pipelines": rows}, after_apis)

# `pipelines` is what the enqueue client reads (taskclient: load_stack / --outputs).
pulumi.export("pipelines", {name: p.outputs for name, p in pipelines.items()})
pulumi.export("dashboardUrl", dashboard.url)
pulumi.export("invoicesQueue", pipelines["invoices"].queue_path)
