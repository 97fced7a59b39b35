"""Domain events: what happened in an organisation, recorded with the change itself.

A feature calls `service.publish()` inside the transaction that made the change, so
an event exists exactly when its cause committed. Consumers (webhooks today) read the
`events` table; they never need the publisher to know about them.
"""
