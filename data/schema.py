"""The chat-format example: the contract between data, both fine-tune paths and eval.

One JSON object per line, ``{"messages": [{"role": ..., "content": ...}, ...]}``: the Azure OpenAI /
OpenAI fine-tuning format. The Azure job uploads the file as it is; the local LoRA job reads the same
file. ``weight`` (0 or 1, assistant messages only) marks turns to leave out of the loss.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Role = Literal["system", "user", "assistant", "tool", "function"]
ROLES: tuple[str, ...] = ("system", "user", "assistant", "tool", "function")
# Keys a message may carry in the fine-tuning format (the OpenAI cookbook's list, plus tool calls).
MESSAGE_KEYS: frozenset[str] = frozenset(
    {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id"}
)
# Keys an example may carry besides "messages".
EXAMPLE_KEYS: frozenset[str] = frozenset({"messages", "tools", "functions", "parallel_tool_calls"})


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role
    content: str = Field(min_length=1)
    name: str | None = None
    weight: Literal[0, 1] | None = None


class ChatExample(BaseModel):
    model_config = ConfigDict(extra="forbid")

    messages: list[ChatMessage] = Field(min_length=1)
