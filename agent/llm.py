"""The single model seam: an OpenAI-compatible endpoint, or the offline planner."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent.context import Context
from agent.offline import OfflinePlanner
from agent.redact import Redactor


def load_chat_model(context: Context) -> BaseChatModel:
    """Return the chat model a run uses, from the run's context alone.

    With an endpoint in ``context.model`` (a base URL or an API key) and the run not
    offline, any OpenAI-compatible endpoint through ``langchain-openai`` - OpenAI, Azure
    OpenAI's v1 endpoint, vLLM, Ollama, llama.cpp's server - with explicit timeouts and
    retries; otherwise the deterministic offline planner.
    """
    config = context.model
    if context.offline or (config.base_url is None and config.api_key is None):
        return OfflinePlanner(
            data=context.data,
            max_diagnoses=context.max_diagnoses,
            horizon=context.horizon_days,
            today=context.today,
        )
    key = config.api_key.get_secret_value() if config.api_key else "not-needed"
    return _endpoint_class()(
        redactor=Redactor.for_backend(context.backend()) if config.redact else None,
        model=config.name,
        base_url=config.base_url,
        api_key=key,  # type: ignore[arg-type]
        timeout=config.timeout_s,
        max_retries=config.max_retries,
        temperature=config.temperature,
        max_completion_tokens=config.max_tokens,
        # chat completions everywhere: the one request shape every server speaks, and the
        # one the redactor reads (langchain-openai would switch some models to Responses)
        use_responses_api=False,
        # Small local servers (llama.cpp) ignore max_completion_tokens: send max_tokens too.
        extra_body={"max_tokens": config.max_tokens},
        # streamed only when asked: not every server streams tool calls and usage, and the
        # recorded cassettes are whole answers
        disable_streaming=not config.stream_tokens,
        stream_usage=config.stream_tokens,
    )


@lru_cache(maxsize=1)
def _endpoint_class() -> type[BaseChatModel]:
    """ChatOpenAI that redacts its requests and sends "" (not null) as a tool turn's content.

    The OpenAI API accepts both; strict servers (llama-cpp-python's) reject null, which
    broke every run after its first tool call. Imported lazily: only real endpoints need it.
    """
    from langchain_openai import ChatOpenAI

    class EndpointChatModel(ChatOpenAI):
        redactor: Redactor | None = None
        """Redacts every request body (None: requests go as built)."""

        def _get_request_payload(
            self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
        ) -> dict[str, Any]:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            for message in payload.get("messages", []):
                if message.get("role") == "assistant" and message.get("content") is None:
                    message["content"] = ""
            # the one place a request is built: nothing leaves unredacted when redaction is on
            return self.redactor.payload(payload) if self.redactor else payload

    return EndpointChatModel


def model_name(model: BaseChatModel) -> str:
    """Name recorded in traces."""
    return str(
        getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    )
