"""How long Cloud Tasks listens for an attempt's answer, and how long a claim holds.

Cloud Tasks cancels an attempt at its dispatch deadline and stops listening for the answer,
"but whether the worker stops processing depends on the worker" (Task.dispatch_deadline,
cloud.google.com/tasks/docs/reference/rest/v2/projects.locations.queues.tasks). Cloud Run
doesn't stop it either: at its request timeout it closes the connection, and "the container
might continue processing the aborted request" (cloud.google.com/run/docs/configuring/
request-timeout). So work can outlive both: a claim must hold for as long as the work runs
(it is renewed, firestore_store.py), and an answer given after the deadline is one nobody
hears (app.py records such a failure instead of handing it back).
"""

from datetime import timedelta

MAX_LEASE = timedelta(seconds=60)
"""A claim is renewed while its work runs, so its lease only bounds how long a crashed
holder blocks the task: short, so that the next delivery takes over soon."""
MIN_LEASE = timedelta(seconds=1)


def margin(dispatch_deadline: timedelta) -> timedelta:
    """A tenth of the deadline, 1-30 s: the delivery's time on the way in (a cold start
    included) and clock skew between instances."""
    return min(max(dispatch_deadline / 10, timedelta(seconds=1)), timedelta(seconds=30))


def answer_budget(dispatch_deadline: timedelta) -> timedelta:
    """From a delivery's arrival, how long an answer is still heard by Cloud Tasks."""
    return dispatch_deadline - margin(dispatch_deadline)


def lease(dispatch_deadline: timedelta) -> timedelta:
    """How long a claim holds unless renewed: half the deadline, 1-60 s. Shorter than the
    answer budget, so that the last attempt, waiting while it is heard, outlasts the claim
    of a holder that crashed."""
    return min(max(dispatch_deadline / 2, MIN_LEASE), MAX_LEASE)
