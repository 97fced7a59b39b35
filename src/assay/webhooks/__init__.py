"""Webhooks: endpoints an organisation registers, Standard Webhooks signing, delivery.

Events come from the `events` table (the outbox): `dispatch.fan_out_once` turns each
committed event into one delivery per subscribed endpoint, `dispatch.deliver_due_once`
sends the due ones through the outbound guard and schedules retries. Both are plain
functions of a sessionmaker, settings and an outbound client, so the in-process loop
(`dispatch.Dispatcher`) and a job engine can run them alike.
"""
