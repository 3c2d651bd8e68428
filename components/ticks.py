"""What a schedule's Cloud Scheduler job sends the handler, as the components write it.

The handler's side of this wire is handler/tick_wire.py. The two share no code: the
handler's image holds handler/ alone, and the installed package (`cloudrun_tasks`) has no
`handler`. So the two values the jobs need are repeated here, and
tests/infra/test_schedules.py checks every job against handler/tick_wire.py's.
"""

TICK_PREFIX = "/_tick"
"""Ticks arrive at this path prefix; the rest of the path is the path of their task."""
QUEUE_HEADER = "X-Tick-Queue"
"""The header naming the queue the tick's task goes to."""
