"""A model endpoint's setup mistakes fail a run with an error naming the setting to fix."""

from __future__ import annotations

import httpx
import openai
import pytest

from agent.context import ModelConfig
from agent.errors import ModelAccessError, ModelNotFoundError, run_failure

REQUEST = httpx.Request("POST", "http://models.example/v1/chat/completions")


@pytest.mark.parametrize(
    ("error", "kind", "setting"),
    [
        (openai.AuthenticationError, ModelAccessError, "LASTMILE_LLM_API_KEY"),
        (openai.PermissionDeniedError, ModelAccessError, "LASTMILE_LLM_API_KEY"),
        (openai.NotFoundError, ModelNotFoundError, "LASTMILE_LLM_MODEL"),
    ],
)
def test_a_refused_key_or_an_unknown_model_names_the_setting(
    error: type[openai.APIStatusError], kind: type[Exception], setting: str
) -> None:
    status = {ModelAccessError: 401, ModelNotFoundError: 404}[kind]  # type: ignore[index]
    cause = error(
        "Incorrect API key provided" if status == 401 else "The model does not exist",
        response=httpx.Response(status, request=REQUEST),
        body={"error": {"message": "refused"}},
    )
    failure = run_failure("abc123", cause, ModelConfig(base_url="http://models.example/v1"))
    assert isinstance(failure, kind)
    assert setting in str(failure) and "http://models.example/v1" in str(failure)
    assert "Traceback" not in str(failure)
