"""The policy pack's verdicts on a plan, offline: the same pack under the same mocks.

The pack needs pulumi-policy, which pins protobuf 5, so it runs in .venv-policy
(`make policy-venv`): policy/offline.py reads the recording this process made and
answers with each violation and its enforcement level from policy/config/<stack>.json,
the file CI's preview passes as --policy-pack-config.
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

from plan.recorder import Recording

ROOT = Path(__file__).resolve().parents[1]
POLICY_DIR = ROOT / "policy"
POLICY_PYTHON = ROOT / ".venv-policy" / "bin" / "python"
MANDATORY = "mandatory"


class PolicyError(RuntimeError):
    """The pack could not be run (no .venv-policy) or failed."""


@dataclass(frozen=True)
class Violation:
    policy: str
    level: str
    """mandatory or advisory (disabled policies are not run)."""
    message: str
    urn: str | None


def evaluate(recording: Recording, stack: str) -> list[Violation]:
    if not POLICY_PYTHON.is_file():
        raise PolicyError(
            f"no {POLICY_PYTHON.relative_to(ROOT)}: run `make policy-venv` (the pack needs"
            " its own virtualenv), or pass --policy off (`make plan POLICY=off`)"
        )
    done = subprocess.run(
        [str(POLICY_PYTHON), "offline.py", "--stack", stack],
        input=json.dumps(dataclasses.asdict(recording)),
        capture_output=True,
        text=True,
        cwd=POLICY_DIR,
        # As policy/pytest.ini: the pack's modules from policy/, plan.recorder from the root.
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(POLICY_DIR), str(ROOT)])},
        check=False,
    )
    if done.returncode != 0:
        raise PolicyError(f"the policy pack failed: {done.stderr.strip()}")
    return [Violation(**v) for v in json.loads(done.stdout)]


def render(violations: list[Violation], stack: str, labels: dict[str, str]) -> str:
    """One line per violation, mandatory first; LABELS names resources by URN."""
    config = f"policy/config/{stack}.json"
    source = config if (ROOT / config).is_file() else "each policy's default level"
    mandatory = sum(v.level == MANDATORY for v in violations)
    head = (
        f"Policy pack (as CI's preview runs it, levels from {source}):"
        f" {mandatory} mandatory, {len(violations) - mandatory} advisory violation"
        f"{'' if len(violations) - mandatory == 1 else 's'}"
    )
    lines = [head]
    for v in sorted(violations, key=lambda v: (v.level != MANDATORY, v.policy, v.urn or "")):
        where = f" [{labels.get(v.urn, v.urn)}]" if v.urn else ""
        lines.append(f"  {v.level.upper()} {v.policy}{where}: {v.message}")
    if mandatory:
        lines.append(
            "  A mandatory violation stops `pulumi preview` and `pulumi up`: fix it as the"
            " message says, or see the plan anyway with --policy report"
            " (`make plan POLICY=report`)."
        )
    return "\n".join(lines) + "\n"


def blocking(violations: list[Violation]) -> bool:
    return any(v.level == MANDATORY for v in violations)
