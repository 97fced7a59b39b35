"""The process's view of itself: liveness and readiness probes, the Prometheus metrics
endpoint, and the system information (versions, runtimes, backends, the organisation's
model versions and their health). Other packages use it through `service` (readiness),
`deps` and `schemas`. It imports `core`, `engine.runtimes`, `settings`, `auth.deps`,
`http`, and the registry through its `service` and `schemas`."""
