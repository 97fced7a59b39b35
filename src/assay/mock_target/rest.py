"""The generic REST endpoint of the vulnerable and refusing models, for REST-template
targets: `POST /{vulnerable,refusing}/rest/generate` with `{"input": "..."}` answers
`{"data": {"text": "..."}}`. It asks for no credential."""

from __future__ import annotations

from asyncio import sleep
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assay.mock_target.chat import bad_request, read_json_object
from assay.mock_target.replies import answer
from assay.mock_target.state import Mode, RecordedRequest, TargetState

REST_MODES = (Mode.VULNERABLE, Mode.REFUSING)


def _generate(state: TargetState, mode: Mode) -> Callable[[Request], Awaitable[Response]]:
    async def generate(request: Request) -> Response:
        if state.latency_seconds > 0:
            await sleep(state.latency_seconds)  # the mock's simulated model latency
        body = await read_json_object(request)
        prompt = body.get("input") if body is not None else None
        if isinstance(prompt, str):
            response: Response = JSONResponse({"data": {"text": answer(mode, prompt, None)}})
        else:
            prompt = None
            response = bad_request("The body must be a JSON object with a string 'input'.")
        state.log.record(
            RecordedRequest(
                mode=mode.value,
                path=request.url.path,
                prompt=prompt,
                has_system=False,
                status=response.status_code,
            )
        )
        return response

    return generate


def routes(state: TargetState) -> list[Route]:
    """The REST route of the vulnerable and the refusing model."""
    return [
        Route(f"/{mode}/rest/generate", _generate(state, mode), methods=["POST"])
        for mode in REST_MODES
    ]
