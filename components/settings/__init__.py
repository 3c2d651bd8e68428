"""Typed stack settings: every config key is declared, defaulted and validated here.

One module per entity: `service` (Cloud Run limits), `app` (the team's container beside
the handler: sidecar, probe and per-instance limits), `container` (what every container is
checked against: image, cpu, memory, env names), `queue` (Cloud Tasks limits),
`schedule` (Cloud Scheduler jobs: cron, time zone, body), `pipeline`, `stack` (labels,
locations), `config` (reading Pulumi config, secret keys, unknown namespaces);
`validation` holds the machinery they share. The models mirror the stack files key for
key (camelCase aliases), so an error's location is the key path the user typed.
"""

from .config import (
    gcp_provider_keys,
    load_settings,
    parse_pipeline,
    parse_settings,
    settings_from_config,
)
from .pipeline import PipelineSettings
from .queue import QueueSettings
from .schedule import ScheduleSettings
from .service import ServiceSettings
from .stack import StackSettings
from .validation import NAMESPACE, ConfigError

__all__ = [
    "NAMESPACE",
    "ConfigError",
    "PipelineSettings",
    "QueueSettings",
    "ScheduleSettings",
    "ServiceSettings",
    "StackSettings",
    "gcp_provider_keys",
    "load_settings",
    "parse_pipeline",
    "parse_settings",
    "settings_from_config",
]
