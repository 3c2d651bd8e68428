"""Stack files as the Pulumi CLI reads them: refused where it refuses, secure values never shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from plan.__main__ import main
from plan.stackfile import SECRET, StackFileError, read_stack_file

# Stack "x" has no policy config: the pack runs at its default levels, and its verdicts
# (printed too) must not show the secret either.
REPORT = ("--policy", "report")
CIPHERTEXT = "v1:Zm9vYmFyYmF6cXV4:c2VjcmV0LWNpcGhlcnRleHQ="

STACK = f"""config:
  gcp:project: acme-tasks-plan
  gcp:region: us-central1
  cloudrun-tasks:pipelines:
    orders:
      service:
        image: us-docker.pkg.dev/cloudrun/container/hello
        env:
          LOG_LEVEL: info
          DB_PASSWORD:
            secure: {CIPHERTEXT}
"""


def write(tmp_path: Path, text: str | bytes) -> Path:
    path = tmp_path / "Pulumi.x.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def test_secure_value_becomes_secret_and_marks_its_key(tmp_path: Path) -> None:
    stack = read_stack_file(write(tmp_path, STACK))
    env = stack.config["cloudrun-tasks:pipelines"]["orders"]["service"]["env"]
    assert env == {"LOG_LEVEL": "info", "DB_PASSWORD": SECRET}
    assert stack.secret_keys == {"cloudrun-tasks:pipelines"}


@pytest.mark.parametrize("format_", ["text", "json", "mermaid", "markdown"])
def test_no_format_prints_a_secure_value(
    tmp_path: Path, format_: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, STACK)
    assert main(["--stack", "x", "--stack-file", str(path), "--format", format_, *REPORT]) == 0
    out = capsys.readouterr().out
    assert CIPHERTEXT not in out and "secure" not in out
    assert out.strip()


def test_diff_does_not_print_a_secure_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = tmp_path / "base.json"
    plain = write(tmp_path, STACK.replace(f"\n            secure: {CIPHERTEXT}", " plain"))
    assert (
        main(
            [
                "--stack",
                "x",
                "--stack-file",
                str(plain),
                "--format",
                "json",
                "-o",
                str(base),
                *REPORT,
            ]
        )
        == 0
    )
    capsys.readouterr()
    secured = tmp_path / "secured.yaml"
    secured.write_text(STACK)
    assert main(["--stack", "x", "--stack-file", str(secured), "--diff", str(base), *REPORT]) == 0
    out = capsys.readouterr().out
    assert CIPHERTEXT not in out
    assert SECRET in out  # the template changed to a secret: shown, not its value


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "config:\n  gcp:project: a\n  gcp:project: b\n",
            "duplicate key 'gcp:project' (line 3): the Pulumi CLI refuses it",
        ),
        (
            "config:\n  cloudrun-tasks:labels:\n    since: 2024-01-01\n",
            "cloudrun-tasks:labels.since: an unquoted date or time ('2024-01-01', line 3)",
        ),
        (
            "config:\n  cloudrun-tasks:labels: !!binary aGVsbG8=\n",
            "cloudrun-tasks:labels: a !!binary value",
        ),
        (
            "config:\n  cloudrun-tasks:pipelines: !!set {a: null}\n",
            "cloudrun-tasks:pipelines: a !!set",
        ),
        ("config:\n  1: x\n", "config key 1 must be a string NAMESPACE:NAME"),
        ("config: [\n", "not valid YAML (line 2)"),
    ],
)
def test_refused_with_one_line_naming_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(StackFileError) as caught:
        read_stack_file(path)
    assert str(caught.value).startswith(f"{path}: {message}")
    assert "\n" not in str(caught.value)


def test_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, b"config:\n  gcp:project: caf\xe9\n")
    assert main(["--stack", "x", "--stack-file", str(path)]) == 2
    assert capsys.readouterr().err == f"error: {path}: not UTF-8 (byte 26)\n"
