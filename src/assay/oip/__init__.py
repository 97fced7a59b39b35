"""The Open Inference Protocol (KServe V2) over REST under /v2: the wire format, how
tensors become records and results tensors, the binary tensor data extension, and the
inference service that scores through the predictions package, so OIP requests are
validated and recorded like native ones. Other packages use it through `service`,
`deps` and `schemas`. It imports `core`, `engine`, `http`, and the registry,
predictions and system packages through their `service`, `deps`, `schemas` and
`models`."""
