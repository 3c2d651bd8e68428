"""Schedules in the plan: under their pipeline in every format, with their next run times
in the text, and in --diff when a schedule changes, comes or goes."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

from plan import diff, document, graph, tree
from tests.plan.conftest import config, pipeline, plan_of

JOB = "cloudscheduler.Job orders_nightly"
JOB_KEY = "cloudrun-tasks:index:Schedules$gcp:cloudscheduler/job:Job::orders_nightly"


def scheduled(cron: str = "0 3 * * *", **extra: Any) -> dict[str, Any]:
    p = pipeline()
    p["schedules"] = {"nightly": {"cron": cron, "timeZone": "Europe/Berlin", **extra}}
    return config(orders=p)


def test_the_job_is_under_its_pipeline_with_its_next_five_runs() -> None:
    before = datetime.now(UTC)
    lines = tree.render(plan_of(scheduled())).splitlines()
    pipeline_at = lines.index("└─ TaskPipeline orders")
    schedules_at = lines.index("   ├─ Schedules orders")
    job_at = next(i for i, line in enumerate(lines) if line.endswith(f"─ {JOB}"))
    assert pipeline_at < schedules_at < job_at
    details = [line.lstrip(" │") for line in lines[job_at + 1 : job_at + 5]]
    assert "cron '0 3 * * *' in Europe/Berlin; up to 5 retries" in details[0]
    assert details[1].startswith("POST ") and "cloudrunv2.Service orders" in details[1]
    assert "serviceaccount.Account orders-ticker" in details[2]
    runs = details[3].removeprefix("next 5 runs: ").split(", ")
    # Each a 03:00 in Berlin on consecutive days, the first within a day of now.
    berlin = ZoneInfo("Europe/Berlin")
    days = [datetime.strptime(run[:16], "%Y-%m-%d %H:%M").replace(tzinfo=berlin) for run in runs]
    assert len(days) == 5 and all(d.hour == 3 and d.minute == 0 for d in days)
    assert all((b - a).days == 1 for a, b in pairwise(days))
    assert 0 < (days[0] - before).total_seconds() <= 24 * 3600
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d 03:00 CES?T", run) for run in runs)


def test_the_job_is_in_the_json_and_mermaid_forms() -> None:
    plan = plan_of(scheduled())
    assert JOB_KEY in document.resources(plan)
    assert json.loads(document.dumps(plan))["resources"]
    assert "orders_nightly" in graph.render(plan)


def test_a_changed_schedule_is_in_the_diff() -> None:
    changes = diff.compare(plan_of(scheduled()), plan_of(scheduled("30 4 * * 1-5")))
    assert ("schedule", "0 3 * * *", "30 4 * * 1-5") in changes.changed[JOB_KEY]
    assert changes.replaced == {}
    added = diff.compare(plan_of(config()), plan_of(scheduled()))
    text = diff.render(added, "base.json", "head")
    assert JOB in text and "Schedules orders" in text
