"""Rate-limit headers on every response, and the default limit for requests no
dependency charged (404, 405, bodies refused before dependencies ran, docs, static files).

Those requests cost little to answer, so they are charged when their response starts;
a request over the budget gets a 429 in place of that response.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assay.core.errors import AssayError, DependencyUnavailable, RateLimited
from assay.http.problems import problem_body, problem_response, request_id_of
from assay.http.rate_limit import APPLIED_STATE_KEY, BUDGET_STATE_KEY, RateClass, RateLimiter


class RateLimitMiddleware:
    def __init__(self, app: ASGIApp, limiter: RateLimiter) -> None:
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        replaced = False

        async def send_with_budget(message: Message) -> None:
            nonlocal replaced
            if replaced:
                return  # the rest of a response that a 429 replaced
            if message["type"] == "http.response.start":
                if not state.get(APPLIED_STATE_KEY):
                    try:
                        await self.limiter.enforce(scope, RateClass.DEFAULT)
                    except (RateLimited, DependencyUnavailable) as refusal:
                        replaced = True
                        await _send_refusal(scope, receive, send, refusal)
                        return
                budget = state.get(BUDGET_STATE_KEY)
                if budget is not None:
                    message["headers"] = [*message.get("headers", ()), *budget.headers()]
            await send(message)

        await self.app(scope, receive, send_with_budget)


async def _send_refusal(scope: Scope, receive: Receive, send: Send, refusal: AssayError) -> None:
    body = problem_body(
        status=refusal.status,
        slug=refusal.slug,
        title=refusal.title,
        detail=refusal.detail,
        instance=str(scope.get("path", "")),
        request_id=request_id_of(scope),
    )
    headers = dict(refusal.headers)
    budget = scope["state"].get(BUDGET_STATE_KEY)
    if budget is not None:
        headers.update((k.decode(), v.decode()) for k, v in budget.headers())
    await problem_response(body, headers)(scope, receive, send)
