"""The OpenAI-compatible chat-completions endpoint of each mock model:
`POST /{vulnerable,refusing,flaky}/v1/chat/completions`.

Requests and answers have OpenAI's shape; errors are `{"error": {"message", "type",
"param", "code"}}`. Any non-empty bearer token is accepted.
"""

from __future__ import annotations

import json
import time
import uuid
from asyncio import sleep
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from assay.mock_target.replies import answer, count_tokens
from assay.mock_target.state import Mode, RecordedRequest, TargetState

DEFAULT_MODEL = "mock-model"
# Roles whose messages are the system prompt; an assistant message may carry no content.
_SYSTEM_ROLES = frozenset({"system", "developer"})


def openai_error(
    status: int,
    message: str,
    *,
    error_type: str = "invalid_request_error",
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """An error answer in OpenAI's shape."""
    body = {"error": {"message": message, "type": error_type, "param": None, "code": code}}
    return JSONResponse(body, status, headers=headers)


def bad_request(message: str) -> Response:
    return openai_error(400, message, code="invalid_request")


async def read_json_object(request: Request) -> dict[str, Any] | None:
    """The request's body if it is a JSON object, else `None` (never raises)."""
    try:
        body = json.loads(await request.body())
    except (ValueError, RecursionError):  # not JSON, not UTF-8, or nested absurdly deep
        return None
    return body if isinstance(body, dict) else None


@dataclass(frozen=True)
class ChatRequest:
    """What the mock needs of a chat-completions request."""

    model: str
    prompt: str  # the last user message, as received
    system_message: str | None  # the system messages joined, None when there is none
    prompt_tokens: int


def _text(content: object) -> str | None:
    """A message's text: a string, or OpenAI's list of content parts; None if neither."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    texts = [
        part.get("text")
        for part in content
        if isinstance(part, dict) and part.get("type") == "text"
    ]
    if len(texts) != len(content) or not all(isinstance(text, str) for text in texts):
        return None
    return "".join(str(text) for text in texts)


def _turns(messages: object) -> list[tuple[str, str]] | str:
    """Each message's (role, text), or what is wrong with MESSAGES."""
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array."
    turns: list[tuple[str, str]] = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if not isinstance(role, str):
            return f"'messages[{index}]' must be an object with a string 'role'."
        content = message.get("content")
        text = "" if content is None and role == "assistant" else _text(content)
        if text is None:
            return f"'messages[{index}].content' must be a string or an array of text parts."
        turns.append((role, text))
    return turns


def parse_chat_request(body: dict[str, Any] | None) -> ChatRequest | str:
    """What the request BODY asks, or what is wrong with it."""
    if body is None:
        return "The request body must be a JSON object."
    model = body.get("model", DEFAULT_MODEL)
    if not isinstance(model, str) or not model:
        return "'model' must be a non-empty string."
    turns = _turns(body.get("messages"))
    if isinstance(turns, str):
        return turns
    prompts = [text for role, text in turns if role == "user"]
    if not prompts:
        return "'messages' must contain a user message."
    systems = [text for role, text in turns if role in _SYSTEM_ROLES]
    return ChatRequest(
        model=model,
        prompt=prompts[-1],
        system_message="\n".join(systems) if systems else None,
        prompt_tokens=sum(count_tokens(text) for _, text in turns),
    )


def has_bearer_token(request: Request) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and bool(token.strip())


def _completion(chat: ChatRequest, mode: Mode) -> dict[str, Any]:
    text = answer(mode, chat.prompt, chat.system_message)
    completion_tokens = count_tokens(text)
    return {
        "id": f"chatcmpl-mock-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": chat.model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": chat.prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": chat.prompt_tokens + completion_tokens,
        },
    }


def _respond(state: TargetState, mode: Mode, request: Request, chat: ChatRequest | str) -> Response:
    if not has_bearer_token(request):
        return openai_error(
            401,
            "Missing bearer token: send 'Authorization: Bearer <any non-empty key>'.",
            code="invalid_api_key",
        )
    if isinstance(chat, str):
        return bad_request(chat)
    if mode is Mode.FLAKY and state.flaky_turn_is_limited():
        return openai_error(
            429,
            "Rate limit reached (mock: the flaky model limits every second request).",
            error_type="requests",
            code="rate_limit_exceeded",
            headers={"Retry-After": "0"},
        )
    return JSONResponse(_completion(chat, mode))


def _completions(state: TargetState, mode: Mode) -> Callable[[Request], Awaitable[Response]]:
    async def completions(request: Request) -> Response:
        if state.latency_seconds > 0:
            await sleep(state.latency_seconds)  # the mock's simulated model latency
        chat = parse_chat_request(await read_json_object(request))
        response = _respond(state, mode, request, chat)
        state.log.record(
            RecordedRequest(
                mode=mode.value,
                path=request.url.path,
                prompt=None if isinstance(chat, str) else chat.prompt,
                has_system=False if isinstance(chat, str) else chat.system_message is not None,
                status=response.status_code,
            )
        )
        return response

    return completions


def routes(state: TargetState) -> list[Route]:
    """The chat-completions route of every mode."""
    return [
        Route(f"/{mode}/v1/chat/completions", _completions(state, mode), methods=["POST"])
        for mode in Mode
    ]
