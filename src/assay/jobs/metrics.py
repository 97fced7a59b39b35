"""Job metrics: how many jobs end, how, and how long they took from submission."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

JOBS_FINISHED = Counter(
    "assay_jobs_finished",
    "Jobs that ended, by kind and outcome (succeeded, failed, cancelled).",
    ["kind", "outcome"],
)
JOB_DURATION = Histogram(
    "assay_job_duration_seconds",
    "Time from a job's submission to its end, by kind and outcome.",
    ["kind", "outcome"],
    buckets=(0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600),
)
# Chunks of every organisation's jobs waiting for a worker, counted by each process that
# runs jobs at every sweep: every process sees the same backlog, so take the max, not the
# sum (the shipped dashboard and alert do).
JOBS_QUEUE_DEPTH = Gauge(
    "assay_jobs_queue_depth",
    "Job chunks waiting for a worker, in every organisation (as of this process's last sweep).",
    multiprocess_mode="max",
)
