"""A FAKE AI endpoint for red-team demos and tests: a vulnerable model, a refusing one and a
flaky one behind OpenAI-compatible chat completions and a generic REST route. Not part of
the production API; loopback only."""
