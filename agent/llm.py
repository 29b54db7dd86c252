"""The single model seam: an OpenAI-compatible endpoint, or the offline planner."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel

from agent.context import Context
from agent.offline import OfflinePlanner
from agent.settings import Settings, get_settings


def load_chat_model(context: Context, settings: Settings | None = None) -> BaseChatModel:
    """Return the chat model a run uses.

    With ``LASTMILE_LLM_BASE_URL`` or ``LASTMILE_LLM_API_KEY`` set (and the run not forced
    offline), any OpenAI-compatible endpoint through ``langchain-openai`` - OpenAI, Azure
    OpenAI's v1 endpoint, vLLM, Ollama, llama.cpp's server - with explicit timeouts and
    retries; otherwise the deterministic offline planner.
    """
    settings = settings or get_settings()
    if context.offline or not settings.uses_llm_endpoint:
        return OfflinePlanner(
            db=context.db,
            max_diagnoses=context.max_diagnoses,
            horizon=context.horizon_days,
            today=context.today,
        )
    key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else "not-needed"
    return _endpoint_class()(
        model=settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=key,  # type: ignore[arg-type]
        timeout=settings.llm_timeout_s,
        max_retries=settings.llm_max_retries,
        temperature=settings.llm_temperature,
        max_completion_tokens=settings.llm_max_tokens,
        # Small local servers (llama.cpp) ignore max_completion_tokens: send max_tokens too.
        extra_body={"max_tokens": settings.llm_max_tokens},
    )


@lru_cache(maxsize=1)
def _endpoint_class() -> type[BaseChatModel]:
    """ChatOpenAI that sends an empty string, not null, as a tool-calling turn's content.

    The OpenAI API accepts both; strict servers (llama-cpp-python's) reject null, which
    broke every run after its first tool call. Imported lazily: only real endpoints need it.
    """
    from langchain_openai import ChatOpenAI

    class EndpointChatModel(ChatOpenAI):
        def _get_request_payload(
            self, input_: Any, *, stop: list[str] | None = None, **kwargs: Any
        ) -> dict[str, Any]:
            payload: dict[str, Any] = super()._get_request_payload(input_, stop=stop, **kwargs)
            for message in payload.get("messages", []):
                if message.get("role") == "assistant" and message.get("content") is None:
                    message["content"] = ""
            return payload

    return EndpointChatModel


def model_name(model: BaseChatModel) -> str:
    """Name recorded in traces."""
    return str(
        getattr(model, "model_name", None) or getattr(model, "model", None) or type(model).__name__
    )
