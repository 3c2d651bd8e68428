"""`python -m plan.pin_image`: a stack file's handler image pinned to one digest, or copied
from the stage before; the result is still a stack file the program accepts."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.settings.config import settings_from_config
from plan import pin_image
from plan.stackfile import read_stack_file
from tests.plan.conftest import ROOT

REPOSITORY = "us-docker.pkg.dev/cloudrun/container/hello"
DIGEST = "sha256:" + "ab" * 32
OTHER = "sha256:" + "cd" * 32


def copy_of(tmp_path: Path, stack: str) -> Path:
    path = tmp_path / f"Pulumi.{stack}.yaml"
    path.write_text((ROOT / f"Pulumi.{stack}.yaml").read_text())
    return path


def images(path: Path) -> list[str]:
    config = read_stack_file(path).config
    return [p["service"]["image"] for p in config["cloudrun-tasks:pipelines"].values()]


def test_every_image_of_the_repository_is_pinned_and_nothing_else_changes(
    tmp_path: Path,
) -> None:
    path = copy_of(tmp_path, "prod")
    before = path.read_text()
    assert pin_image.main([str(path), "--image", f"{REPOSITORY}@{DIGEST}"]) == 0
    after = path.read_text()
    assert images(path) == [f"{REPOSITORY}@{DIGEST}"] * 2
    # The placeholder digest lines changed; every other line, comments included, didn't.
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 2
    assert all(a.endswith("0" * 64) and b.endswith("ab" * 32) for a, b in changed)
    config = read_stack_file(path)
    settings_from_config(config.config, config.secret_keys, "prod")


def test_promotion_copies_the_digest_of_the_stage_before(tmp_path: Path) -> None:
    dev, staging = copy_of(tmp_path, "dev"), copy_of(tmp_path, "staging")
    assert pin_image.main([str(dev), "--image", f"{REPOSITORY}:v1@{DIGEST}"]) == 0
    args = [str(staging), "--from", str(dev), "--repository", REPOSITORY]
    assert pin_image.main(args) == 0
    assert set(images(staging)) == {f"{REPOSITORY}@{DIGEST}"}


@pytest.mark.parametrize(
    ("image", "why"),
    [
        (REPOSITORY, "not pinned by a real digest"),
        (f"{REPOSITORY}:latest", "not pinned by a real digest"),
        (f"{REPOSITORY}@sha256:{'0' * 64}", "not pinned by a real digest"),
        ("Not A Reference", "not an image reference"),
        (f"us-docker.pkg.dev/other/repo/img@{DIGEST}", "no `image:` of us-docker.pkg.dev/other"),
    ],
)
def test_a_pin_that_cannot_be_made_is_refused_and_changes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], image: str, why: str
) -> None:
    path = copy_of(tmp_path, "dev")
    before = path.read_text()
    assert pin_image.main([str(path), "--image", image]) == 1
    assert why in capsys.readouterr().err
    assert path.read_text() == before


def test_promotion_from_a_stage_without_one_digest_is_refused(tmp_path: Path) -> None:
    dev, staging = copy_of(tmp_path, "dev"), copy_of(tmp_path, "staging")
    args = [str(staging), "--from", str(dev), "--repository", REPOSITORY]
    assert pin_image.main(args) == 1  # dev runs the image by tag
    # dev runs it in both its pipelines (orders, and thumbnails in front of its app).
    text = dev.read_text().replace(f"image: {REPOSITORY}\n", f"image: {REPOSITORY}@{DIGEST}\n")
    two = staging.read_text()
    assert pin_image.digest_in(text, REPOSITORY, "dev") == DIGEST
    mixed = two.replace(f"image: {REPOSITORY}\n", f"image: {REPOSITORY}@{DIGEST}\n", 1)
    mixed = mixed.replace(f"image: {REPOSITORY}\n", f"image: {REPOSITORY}@{OTHER}\n", 1)
    with pytest.raises(pin_image.PinError, match="must run at one digest"):
        pin_image.digest_in(mixed, REPOSITORY, "staging")
