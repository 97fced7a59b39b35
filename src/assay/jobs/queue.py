"""The transport: a taskiq broker, in process by default, Redis or RabbitMQ to scale out.

A message only says "work on job J of organisation O"; what is left to do, and who does
it, is in the jobs tables (assay.jobs.execution). A lost or repeated message costs
nothing: a message for a finished job does nothing, and a job whose message was lost is
sent again by the sweeper.
"""

from __future__ import annotations

import asyncio
import importlib
import random
from typing import Any
from urllib.parse import urlsplit

from taskiq import AsyncBroker, InMemoryBroker
from taskiq.kicker import AsyncKicker
from taskiq.message import TaskiqMessage
from taskiq.middlewares import SmartRetryMiddleware

from assay.jobs.errors import TransientJobError
from assay.settings import Settings

RUN_JOB_TASK = "assay.jobs.run"
# The extra, and the module it installs, of each broker scheme.
_BROKER_EXTRAS: dict[str, tuple[str, str]] = {
    "redis": ("jobs-redis", "taskiq_redis"),
    "rediss": ("jobs-redis", "taskiq_redis"),
    "amqp": ("jobs-rabbitmq", "taskiq_aio_pika"),
    "amqps": ("jobs-rabbitmq", "taskiq_aio_pika"),
}


class BackoffRetryMiddleware(SmartRetryMiddleware):
    """taskiq's retry middleware with exponential backoff and jitter that every broker
    honours: the delay doubles with each retry (up to a cap), half of it random."""

    def make_delay(self, message: TaskiqMessage, retries: int) -> float:
        ceiling: float = min(self.default_delay * 2 ** max(retries - 1, 0), self.max_delay_exponent)
        return float(ceiling / 2 + random.uniform(0, ceiling / 2))  # noqa: S311 - jitter, not secrecy

    async def on_send(
        self, kicker: AsyncKicker[Any, Any], message: TaskiqMessage, delay: float
    ) -> None:
        # The in-process and Redis list brokers ignore a delay label: wait here, then send.
        await asyncio.sleep(delay)
        await kicker.kiq(*message.args, **message.kwargs)


def broker_problems(settings: Settings) -> list[str]:
    """A broker URL whose extra is not installed, as a configuration problem."""
    if settings.jobs_broker is None:
        return []
    extra, module = _BROKER_EXTRAS[urlsplit(settings.jobs_broker).scheme]
    try:
        importlib.import_module(module)
    except ImportError:
        return [
            f"ASSAY_JOBS_BROKER is set, but its packages cannot be imported: install the "
            f"{extra} extra, pip install 'assay[{extra}]'."
        ]
    return []


def create_broker(settings: Settings) -> AsyncBroker:
    """The broker the settings name, with the retry middleware."""
    url = settings.jobs_broker
    broker: AsyncBroker
    if url is None:
        broker = InMemoryBroker(max_stored_results=1, propagate_exceptions=False)
    elif urlsplit(url).scheme in ("redis", "rediss"):
        # Imported here: the jobs-redis extra is optional (broker_problems reports it).
        from taskiq_redis import ListQueueBroker  # noqa: PLC0415 - see the comment above

        # BRPOP waits as long as the queue is empty: no read timeout (redis-py's default
        # would end every idle wait with an error); keepalive notices a dead server.
        broker = ListQueueBroker(
            url, queue_name=settings.jobs_queue, socket_timeout=None, socket_keepalive=True
        )
    else:
        # Imported here: the jobs-rabbitmq extra is optional (broker_problems reports it).
        from taskiq_aio_pika import AioPikaBroker, Queue  # noqa: PLC0415 - see the comment above

        broker = AioPikaBroker(url, task_queues=[Queue(name=settings.jobs_queue)])
    broker.add_middlewares(
        BackoffRetryMiddleware(
            default_retry_count=settings.jobs_max_attempts,
            default_retry_label=True,
            default_delay=settings.jobs_retry_base_seconds,
            use_jitter=True,
            use_delay_exponent=True,
            max_delay_exponent=settings.jobs_retry_max_seconds,
            # Only what the runner judged transient; anything else is a bug, not retried.
            types_of_exceptions=(TransientJobError,),
        )
    )
    return broker
