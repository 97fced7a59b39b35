"""Predictions: the native predict path (alias resolution cache, validation,
micro-batching on scoring threads, the fast path that serves the predict route without
the framework's routing) and the prediction records, buffered, flushed and read back.
Other packages use it through `service` (`PredictService`), `deps`, `schemas` and
`models` (the records table). It imports `core`, `engine`, `settings`, `auth.deps`,
`http`, and the registry through its `service`, `schemas` and `models`."""
