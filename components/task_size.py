"""The largest task Cloud Tasks takes: the enqueue client checks every task against it, and a
schedule's body (sent as its ticks' task body) is checked against it at config time."""

# The quotas page's limit for a task: "Maximum task size 1MB" (cloud.google.com/tasks/docs/
# quotas). The tasks.create reference says 100KB, a line older API versions scoped to App
# Engine queues ("For App Engine queues, the maximum task size is 100KB", v2beta2); HTTP
# tasks above 100 KB are created in production (snarfed/bridgy-fed #2592 only fails above
# 1 MB; googleapis/google-cloud-go #7821 asked about the discrepancy). Dead letters of
# several hundred KB must be replayable, so 1 MB it is, counted as 10^6 bytes of the
# serialized task (the smaller reading of "1MB").
MAX_TASK_BYTES = 1_000_000
