"""What the client shares with the components: durations and the task size limit.

They are modules of components/, which this repository imports as `components` and the
wheel installs as `cloudrun_tasks` (pyproject.toml): the installed name when there is
one, so that the client installed with the `client` extra runs outside this repository;
this repository's virtualenvs never install the wheel, so a process holds one copy only.
"""

from importlib import import_module
from importlib.util import find_spec
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from components import durations, task_size
else:
    _PACKAGE = "cloudrun_tasks" if find_spec("cloudrun_tasks") is not None else "components"
    durations = import_module(f"{_PACKAGE}.durations")
    task_size = import_module(f"{_PACKAGE}.task_size")

Duration = durations.Duration
DurationError = durations.DurationError
MAX_DISPATCH_DEADLINE = durations.MAX_DISPATCH_DEADLINE
MAX_SCHEDULE_AHEAD = durations.MAX_SCHEDULE_AHEAD
MIN_DISPATCH_DEADLINE = durations.MIN_DISPATCH_DEADLINE
NANOS_PER_SECOND = durations.NANOS_PER_SECOND
MAX_TASK_BYTES = task_size.MAX_TASK_BYTES
