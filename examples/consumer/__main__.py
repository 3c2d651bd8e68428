"""A program of its own that uses the cloudrun-tasks components: two pipelines, their
project APIs and one idempotency store. Nothing here comes from stack-file loading: the
components check their args themselves."""

import pulumi
from cloudrun_tasks import IdempotencyStore, PipelineInputs, ProjectApis, TaskPipeline

project = pulumi.Config("gcp").require("project")
stack = pulumi.get_stack()

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
        "service": {"image": "europe-docker.pkg.dev/acme/apps/invoices:1.4.2", "max_instances": 4},
        "queue": {"max_dispatches_per_second": 20, "max_attempts": 10},
        "enqueuers": [f"serviceAccount:billing@{project}.iam.gserviceaccount.com"],
        "schedules": {
            "dunning": {"cron": "0 6 * * 1-5", "time_zone": "Europe/Berlin", "path": "/dunning"}
        },
    },
    "thumbnails": {
        "dispatch_deadline": "300s",
        "service": {"image": "europe-docker.pkg.dev/acme/apps/thumbnails:2.0.0", "memory": "1Gi"},
        "enqueuers": [f"serviceAccount:uploads@{project}.iam.gserviceaccount.com"],
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

pulumi.export("pipelines", {name: p.outputs for name, p in pipelines.items()})
