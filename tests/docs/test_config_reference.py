"""The configuration reference's generator (docs/config_reference.py): every field needs its
docstring, and the table follows the models."""

from __future__ import annotations

import pytest

from components.settings import ConfigError, settings_from_config
from components.settings.validation import Settings
from docs.config_reference import MARKER, on_page_markdown, render, settings


class Documented(Settings):
    """A model of two fields, one of them undocumented."""

    size: int = 1
    """How big."""
    colour: str = "red"


def test_an_undocumented_field_fails_the_build() -> None:
    with pytest.raises(ValueError, match=r"Documented.colour: no docstring to document x.colour"):
        list(settings(Documented, "x."))


def test_rows_carry_key_type_default_and_docstring() -> None:
    rows = render().splitlines()
    [deadline] = [r for r in rows if "`cloudrun-tasks:pipelines.<pipeline>.dispatchDeadline`" in r]
    assert deadline.startswith("| `cloudrun-tasks:pipelines.<pipeline>.dispatchDeadline` |")
    assert "| duration | `600s` |" in deadline and "`15s`..`1800s`" in deadline
    [cpu] = [r for r in rows if ".service.cpu`" in r]
    assert '| string | `"1"` |' in cpu  # a string in YAML, not the number 1
    [project] = [r for r in rows if r.startswith("| `gcp:project`")]
    assert "**required**" in project


def test_the_hook_fills_only_the_marked_page() -> None:
    assert on_page_markdown("no marker here") == "no marker here"
    filled = on_page_markdown(f"before\n{MARKER}\nafter")
    assert filled.startswith("before\n| Key | Type | Default |") and filled.endswith("\nafter")


def test_the_pipeline_name_rule_is_the_one_enforced() -> None:
    """The reference once left out "not ending with a hyphen"; the models enforce it."""
    [row] = [r for r in render().splitlines() if r.startswith("| **`cloudrun-tasks:pipelines`**")]
    assert "1..22 of `a-z 0-9 -`, starting with a letter and not ending with a hyphen" in row
    config = {
        "gcp:project": "acme-tasks-dev",
        "gcp:region": "us-central1",
        "cloudrun-tasks:pipelines": {"orders-": {"service": {"image": "gcr.io/a/b"}}},
    }
    with pytest.raises(ConfigError, match="not ending with a hyphen"):
        settings_from_config(config, set(), stack="dev")
