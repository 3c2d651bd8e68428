"""The documentation's examples are run, so they can't drift from the program: the
configuration page's stack file and error, and the package page's program."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.settings import ConfigError
from plan.recorder import run_program
from tests.docs.pages import blocks, text
from tests.infra.conftest import ROOT
from tests.infra.expectations import check_pipeline

CONFIGURATION = text("configuration.md")
PACKAGE = text("package.md")


def config_example() -> dict:
    [block] = [b for b in blocks(CONFIGURATION, "yaml") if "cloudrun-tasks:pipelines" in b]
    return yaml.safe_load(block)["config"]


def test_config_example_builds_the_documented_pipeline() -> None:
    config = config_example()
    rec = run_program(ROOT, "readme", config)
    orders = config["cloudrun-tasks:pipelines"]["orders"]
    check_pipeline(
        rec,
        "orders",
        location=orders["location"],
        protect=False,
        enqueuers=orders["enqueuers"],
        secrets=orders["service"]["secrets"],
    )


def test_documented_error_is_the_real_one() -> None:
    config = config_example()
    orders = config["cloudrun-tasks:pipelines"]["orders"]
    orders["queue"]["maxDispatchesPerSecond"] = 900
    orders["service"]["minInstances"] = 20
    with pytest.raises(ConfigError) as caught:
        run_program(ROOT, "readme", config)
    [documented] = [b for b in blocks(CONFIGURATION, "text") if "invalid stack config" in b]
    assert f"error: {caught.value}\n" == documented


def test_component_example_runs_as_a_program(tmp_path: Path) -> None:
    [example] = [b for b in blocks(PACKAGE, "python") if "TaskPipeline(" in b]
    # In this repository the package's source folder is importable as `components`; the
    # installed route is tests/package/test_consumer_example.py.
    assert "from cloudrun_tasks import" in example
    example = example.replace("from cloudrun_tasks import", "from components import")
    (tmp_path / "__main__.py").write_text(example)
    (tmp_path / "Pulumi.yaml").write_text("name: other-program\nruntime: python\n")
    (tmp_path / "Pulumi.test.yaml").write_text("config: {}\n")
    rec = run_program(tmp_path, "test")
    check_pipeline(
        rec,
        "orders",
        location="us-central1",
        protect=False,
        enqueuers=[],
        exported=rec.outputs["orders"],
    )
