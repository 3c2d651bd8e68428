"""How the suite splits over pytest-xdist workers, and which tests `make check` leaves out.

Each xdist worker is a session of its own: the session fixtures (the Cloud Tasks emulator,
the handler, the Pub/Sub emulator) start once per worker, on ports the OS picks, so no two
workers share one. What must not be split is a costly fixture shared by several tests:
- the tests of a module with a module-scoped fixture (a Firestore emulator, a recorded
  program) go to one worker (an xdist group per module), so that fixture is made once, not
  once per worker that happens to get one of its tests; other tests are spread one by one;
- modules that share a session fixture costly to start (the Pub/Sub emulator's JVM, about
  half a minute on a busy machine) or unsafe to make twice at once (the wheel built in this
  working tree) name one group for all of them (SHARED_GROUPS).
`make test` runs `pytest -n N --dist loadgroup`, which honours those groups.

The `processes` mark: a test that starts a process (an emulator, the handler, the CLI, a
JVM, pip) through a fixture or its module. `make check` runs the others.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

# Modules whose tests share the session's Pub/Sub emulator: one worker starts it for all.
# Modules whose tests share the session's wheel (a copy of this working tree, built by pip):
# one worker builds it once for all of them.
SHARED_GROUPS = {
    "tests/app/test_payloads_emulators.py": "pubsub",
    "tests/app/test_replay_emulators.py": "pubsub",
    "tests/app/test_tracing_emulators.py": "pubsub",
    "tests/package/test_client_wheel.py": "wheel",
    "tests/package/test_consumer_example.py": "wheel",
    "tests/package/test_schema_version.py": "wheel",
    "tests/package/test_wheel.py": "wheel",
}


def _starts_processes(item: pytest.Item) -> bool:
    """Whether the test's module, or the module of a fixture it uses, starts processes
    (imports subprocess or local.processes)."""
    modules = [getattr(item, "module", None)]
    modules += [sys.modules.get(d.func.__module__) for d in _fixture_definitions(item)]
    return any(
        value is subprocess or getattr(value, "__module__", None) == "local.processes"
        for module in modules
        if module is not None
        for value in vars(module).values()
    )


def _fixture_definitions(item: pytest.Item) -> list[pytest.FixtureDef[object]]:
    fixtures = getattr(item, "_fixtureinfo", None)
    if fixtures is None:
        return []
    return [d for definitions in fixtures.name2fixturedefs.values() for d in definitions]


def _group(item: pytest.Item) -> str | None:
    path = item.nodeid.split("::", 1)[0]
    if path in SHARED_GROUPS:
        return SHARED_GROUPS[path]
    if any(d.scope == "module" for d in _fixture_definitions(item)):
        return path
    return None


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = _group(item)
        if group is not None and not any(item.iter_markers("xdist_group")):
            item.add_marker(pytest.mark.xdist_group(group))
        if _starts_processes(item):
            item.add_marker(pytest.mark.processes)
