"""Recordings the judges read: every stack file, and one generated config with every option on."""

from __future__ import annotations

from typing import Any

import pytest

from plan.recorder import Recording, run_program
from tests.infra.conftest import ROOT, STACKS, record

PROJECT = "acme-tasks-judged"
ENQUEUER = f"serviceAccount:api@{PROJECT}.iam.gserviceaccount.com"
REPLAYER = "group:oncall@example.com"
EVERY_OPTION_STACK = "judged"


def every_option_config() -> dict[str, Any]:
    """Every config key set, away from its default where it has one: protection, labels,
    both kinds of alert channel, the database's id, location and TTL, and two pipelines
    in two regions with every service (an app beside the handler, with every key), queue
    and alert key, secrets, enqueuers and replayers (one of them both), and schedules (one
    with every key, paused; one with its defaults) in each region."""
    return {
        "gcp:project": PROJECT,
        "gcp:region": "europe-west1",
        "cloudrun-tasks:protect": True,
        "cloudrun-tasks:labels": {"team": "payments", "cost-centre": "cc-42"},
        "cloudrun-tasks:alerts": {
            "notificationChannels": [f"projects/{PROJECT}/notificationChannels/1234567890"],
            "emails": ["oncall@example.com"],
        },
        "cloudrun-tasks:idempotency": {
            "database": "judged-records",
            "location": "eur3",
            "ttl": "960h",
        },
        "cloudrun-tasks:pipelines": {
            "orders": {
                "dispatchDeadline": "20m",
                "service": {
                    "image": "europe-docker.pkg.dev/acme/tasks/handler@sha256:" + "ab" * 32,
                    "ingress": "internal-and-cloud-load-balancing",
                    "timeout": "1h",
                    "concurrency": 4,
                    "minInstances": 1,
                    "maxInstances": 5,
                    "cpu": "2",
                    "memory": "1Gi",
                    "env": {"LOG_LEVEL": "info"},
                    "secrets": {"API_KEY": "api-key:3", "DB_PASSWORD": "db-password:latest"},
                    "app": {
                        "image": "europe-docker.pkg.dev/acme/apps/orders@sha256:" + "cd" * 32,
                        "port": 9000,
                        "cpu": "1",
                        "memory": "2Gi",
                        "env": {"NODE_ENV": "production"},
                        "secrets": {"DB_PASSWORD": "db-password:2", "SIGNING": "signing-key:1"},
                        "startupProbe": {
                            "path": "/healthz",
                            "initialDelaySeconds": 2,
                            "periodSeconds": 5,
                            "timeoutSeconds": 3,
                            "failureThreshold": 40,
                        },
                        "localCommand": ["node", "server.js"],
                    },
                },
                "queue": {
                    "maxDispatchesPerSecond": 2.5,
                    "maxConcurrentDispatches": 20,
                    "maxAttempts": -1,
                    "maxRetryDuration": "2h",
                    "minBackoff": "0.5s",
                    "maxBackoff": "10m",
                    "maxDoublings": 3,
                    "loggingSamplingRatio": 0.25,
                    "paused": True,
                },
                "enqueuers": [ENQUEUER, "user:dev@example.com"],
                "schedules": {
                    "nightly-report": {
                        "cron": "30 2 * * 1-5",
                        "timeZone": "America/New_York",
                        "body": {"kind": "report", "days": [1, 2]},
                        "path": "/reports",
                        "paused": True,
                    },
                    "hourly": {"cron": "0 * * * *"},
                },
                "replayers": [ENQUEUER, REPLAYER],
                "payloads": {"enabled": True, "threshold": 100_000},
                "alerts": {
                    "enabled": False,
                    "backlog": {"threshold": 500, "duration": "10m"},
                    "failingAttempts": {"ratio": 0.2, "window": "15m", "duration": "5m"},
                    "capacity": {"duration": "30m", "errorRatio": 0.01, "errorWindow": "10m"},
                },
            },
            "reports": {
                "location": "europe-west4",
                "service": {"image": "europe-docker.pkg.dev/acme/tasks/reports:1.0"},
                "schedules": {"weekly": {"cron": "0 6 * * MON", "timeZone": "Europe/Amsterdam"}},
            },
        },
    }


@pytest.fixture(scope="session")
def judged() -> dict[str, Recording]:
    """Every stack file's recording, and the every-option one, by stack name."""
    recordings = {stack: run_program(ROOT, stack) for stack in STACKS}
    recordings[EVERY_OPTION_STACK] = record(every_option_config(), stack=EVERY_OPTION_STACK)
    return recordings
