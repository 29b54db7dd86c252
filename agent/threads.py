"""Conversation threads: a question's earlier turns, trimmed to a token budget.

A thread is the runs asked with one ``thread_id`` (the service keeps them). Each earlier
turn becomes the manager's question and the plan's summary, so a follow-up ("and the day
after?", "what should we do about that store?") is read in its light: by the offline
planner, which carries the previous turn's scope and period, and by a model, which sees the
turns. Turns are trimmed with LangChain's ``trim_messages`` and an approximate token count
(no tokenizer download), newest kept, always starting on a question.
"""

from __future__ import annotations

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from langchain_core.messages.utils import count_tokens_approximately, trim_messages

from agent.storage.runs import RunRecord

THREAD_TOKEN_BUDGET = 2000
"""Tokens of earlier turns a question carries (about 4 characters a token): a dozen turns of
question and summary, well inside the smallest context windows the project records with."""


def thread_messages(runs: list[RunRecord], budget: int = THREAD_TOKEN_BUDGET) -> list[BaseMessage]:
    """Return the earlier turns of a thread as messages, oldest first, within ``budget``."""
    messages: list[BaseMessage] = []
    for run in runs:
        if run.question is None:
            continue
        messages.append(HumanMessage(content=run.question))
        summary = (run.plan or {}).get("summary") or run.error or "No answer was recorded."
        messages.append(AIMessage(content=str(summary)))
    if not messages:
        return []
    return list(
        trim_messages(
            messages,
            max_tokens=budget,
            token_counter=count_tokens_approximately,
            strategy="last",
            start_on="human",
            end_on="ai",
        )
    )
