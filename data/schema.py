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


# The sibling tasks' examples: one JSON object per line, these fields and no others.
SentimentLabel = Literal["negative", "neutral", "positive"]
SENTIMENT_LABELS: tuple[str, ...] = ("negative", "neutral", "positive")


class SummaryExample(BaseModel):
    """A legal document and its reference summary."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    document: str = Field(min_length=1)
    summary: str = Field(min_length=1)
    title: str | None = None
    source: str = ""


class SentimentExample(BaseModel):
    """A social-media post and its 3-way sentiment label."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    text: str = Field(min_length=1)
    label: SentimentLabel
    source: str = ""


class CaptionExample(BaseModel):
    """An image and one caption. ``image`` is a path relative to the captions file, an absolute
    path, ``fashion-mnist:<split>:<index>`` for a photo of Debian's dataset-fashion-mnist, or
    ``skimage:<file>`` for a sample photo shipped with scikit-image."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1)
    image: str = Field(min_length=1)
    caption: str = Field(min_length=1)
    source: str = ""
