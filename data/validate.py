"""Check a chat-format JSONL file before a fine-tune job sees it.

Decisions:
- The checks are the OpenAI cookbook's chat fine-tuning data-prep notebook (data type, missing
  messages list, missing keys, unrecognised keys, unrecognised roles, missing content, no assistant
  message), then Azure OpenAI's rules (at least 10 examples, ``weight`` only 0/1 and only on
  assistant messages, the target model's per-example token limit, the file size limit), then
  warnings (no system message, no user message, very short answers, duplicates).
- Every problem names ``file:line: field``; the file is read line by line as bytes, so a bad byte, a
  broken JSON line or a 50 MB line is reported where it is and never stops the rest of the report.
- Token counts: a ``local:`` target counts with the model's own tokenizer and chat template. Azure
  models use tiktoken's tables, which it downloads at run time; offline we approximate with
  OpenAI's rule of thumb (4 characters a token, 3 tokens of overhead a message) and say so.
- The epochs and billing-token estimate follows the cookbook: 3 epochs, raised for small files
  (at least 100 example-passes) and lowered for big ones (at most 25,000), counting each example up
  to the token limit.
"""

from __future__ import annotations

import hashlib
import json
import math
import statistics
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from data.schema import EXAMPLE_KEYS, MESSAGE_KEYS, ROLES
from tunedesk.errors import ConfigError, DataError, printable
from tunedesk.files import parse_json

MAX_LINE_BYTES = 8 * 1024 * 1024  # far above any example a token limit allows
AZURE_MAX_FILE_BYTES = 512 * 1024 * 1024
AZURE_MIN_EXAMPLES = 10
SHORT_ANSWER_WORDS = 3

# Per-example token limits of models Azure OpenAI fine-tunes (training context length).
AZURE_TOKEN_LIMITS: dict[str, int] = {
    "gpt-4o-mini-2024-07-18": 65_536,
    "gpt-4o-2024-08-06": 65_536,
    "gpt-4.1-2025-04-14": 65_536,
    "gpt-4.1-mini-2025-04-14": 65_536,
    "gpt-4.1-nano-2025-04-14": 32_768,
    "gpt-35-turbo-0125": 16_385,
    "gpt-35-turbo-1106": 16_385,
}

Severity = Literal["error", "warning"]


@dataclass
class Problem:
    line: int  # 0: the file as a whole
    field: str
    code: str
    message: str
    severity: Severity = "error"

    def format(self, path: Path) -> str:
        where = f"{path}:{self.line}" if self.line else str(path)
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


@dataclass
class Target:
    kind: Literal["azure", "local"]
    model: str
    token_limit: int
    count: Callable[[list[dict[str, Any]]], int]  # a whole conversation, as the template renders it
    count_text: Callable[[str], int]  # one message's text
    approximate: bool


@dataclass
class Report:
    path: Path
    target: str
    token_count: str  # how tokens were counted
    examples: int = 0
    problems: list[Problem] = field(default_factory=list)
    tokens: list[int] = field(default_factory=list)
    assistant_tokens: list[int] = field(default_factory=list)
    messages: list[int] = field(default_factory=list)
    epochs: int = 0
    billing_tokens: int = 0

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def summary(self) -> dict[str, Any]:
        return {
            "file": str(self.path),
            "target": self.target,
            "token_count": self.token_count,
            "ok": self.ok,
            "examples": self.examples,
            "errors": len(self.errors),
            "warnings": len(self.problems) - len(self.errors),
            "problem_counts": dict(Counter(p.code for p in self.problems)),
            "messages_per_example": spread(self.messages),
            "tokens_per_example": spread(self.tokens),
            "assistant_tokens_per_example": spread(self.assistant_tokens),
            "epochs": self.epochs,
            "billing_tokens": self.billing_tokens,
            "problems": [asdict(p) for p in self.problems],
        }


def spread(values: list[int]) -> dict[str, float] | None:
    """Min, mean, nearest-rank 95th percentile and max; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    return {
        "min": ordered[0],
        "mean": round(statistics.fmean(ordered), 1),
        "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)],
        "max": ordered[-1],
    }


def parse_target(spec: str, home: Path) -> Target:
    """``azure:<base model>`` or ``local:<model reference>``."""
    kind, _, model = spec.partition(":")
    if kind == "azure":
        if model not in AZURE_TOKEN_LIMITS:
            known = ", ".join(AZURE_TOKEN_LIMITS)
            raise ConfigError(f"unknown Azure fine-tuning model {model!r} in --target; known: {known}")
        return Target(
            "azure", model, AZURE_TOKEN_LIMITS[model], approximate_tokens, approximate_text_tokens, approximate=True
        )
    if kind == "local" and model:
        return _local_target(model, home)
    raise ConfigError(f"--target must look like azure:gpt-4o-mini-2024-07-18 or local:smollm2-135m, not {spec!r}")


def approximate_text_tokens(text: str) -> int:
    """OpenAI's rule of thumb for English: about 4 characters a token."""
    return math.ceil(len(text) / 4)


def approximate_tokens(messages: list[dict[str, Any]]) -> int:
    """Text tokens plus the cookbook's framing: 3 tokens a message, 3 to prime the reply."""
    return sum(approximate_text_tokens(str(m.get("content") or "")) for m in messages) + 3 * len(messages) + 3


def _local_target(model: str, home: Path) -> Target:
    from transformers import AutoConfig, AutoTokenizer

    from tunedesk.prepare import ensure_transformers

    directory = ensure_transformers(model, home)
    tokenizer = AutoTokenizer.from_pretrained(directory)
    limit = int(getattr(AutoConfig.from_pretrained(directory), "max_position_embeddings", 0) or 2048)

    def count(messages: list[dict[str, Any]]) -> int:
        plain = [{"role": m["role"], "content": m["content"]} for m in messages]
        encoded: Any = tokenizer.apply_chat_template(plain, tokenize=True)
        return len(encoded["input_ids"] if hasattr(encoded, "keys") else encoded)

    def count_text(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=False)["input_ids"])

    return Target("local", model, limit, count, count_text, approximate=False)


def validate_file(path: Path, target: Target) -> Report:
    report = Report(
        path=path,
        target=f"{target.kind}:{target.model}",
        token_count="approximate (4 characters a token; tiktoken's tables are not available offline)"
        if target.approximate
        else f"exact ({target.model} tokenizer and chat template)",
    )
    if not path.is_file():
        raise ConfigError(f"{path}: no such file")
    size = path.stat().st_size
    if target.kind == "azure" and size > AZURE_MAX_FILE_BYTES:
        report.problems.append(Problem(0, "", "file_too_large", f"{size:,} bytes; Azure accepts at most 512 MB"))
    seen: dict[str, int] = {}
    for number, raw in _lines(path, report):
        example = _parse(number, raw, report)
        if example is None:
            continue
        report.examples += 1
        if _check_example(number, example, report):
            _measure(number, example, target, report)
        digest = hashlib.sha256(json.dumps(example.get("messages"), sort_keys=True).encode()).hexdigest()
        if digest in seen:
            report.problems.append(
                Problem(number, "messages", "duplicate", f"same conversation as line {seen[digest]}", "warning")
            )
        seen.setdefault(digest, number)
    if target.kind == "azure" and report.examples < AZURE_MIN_EXAMPLES:
        report.problems.append(
            Problem(0, "", "too_few_examples", f"{report.examples} examples; Azure needs at least {AZURE_MIN_EXAMPLES}")
        )
    report.epochs, report.billing_tokens = estimate_billing(report.tokens, target.token_limit)
    report.problems.sort(key=lambda p: (p.line, p.field))
    return report


def estimate_billing(tokens: list[int], token_limit: int, target_epochs: int = 3) -> tuple[int, int]:
    """The cookbook's default-epochs rule and the tokens a job would bill."""
    n = len(tokens)
    if n == 0:
        return 0, 0
    epochs = target_epochs
    if n * target_epochs < 100:
        epochs = min(25, math.ceil(100 / n))
    elif n * target_epochs > 25_000:
        epochs = max(1, 25_000 // n)
    return epochs, epochs * sum(min(token_limit, t) for t in tokens)


def _lines(path: Path, report: Report) -> Iterator[tuple[int, bytes]]:
    """(line number, bytes) for each line; an overlong line is reported and skipped, not loaded."""
    with path.open("rb") as handle:
        number = 0
        while True:
            raw = handle.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                length = len(raw)
                while chunk := handle.readline(MAX_LINE_BYTES):  # skip to the end of this line
                    length += len(chunk)
                    if chunk.endswith(b"\n"):
                        break
                report.problems.append(
                    Problem(number, "", "line_too_long", f"{length:,} bytes; no example can be over 8 MiB")
                )
                continue
            yield number, raw


def _parse(number: int, raw: bytes, report: Report) -> dict[str, Any] | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        report.problems.append(
            Problem(number, "", "encoding", f"not UTF-8: byte 0x{raw[exc.start]:02x} at column {exc.start + 1}")
        )
        return None
    if not text.strip():
        report.problems.append(Problem(number, "", "blank_line", "blank line; every line must hold one example"))
        return None
    try:
        value = parse_json(text, "", DataError)
    except DataError as exc:  # broken, nested too deeply, a lone surrogate escape...
        report.problems.append(Problem(number, "", "invalid_json", str(exc).removeprefix(": ")))
        return None
    if not isinstance(value, dict):
        report.problems.append(Problem(number, "", "data_type", f"expected a JSON object, got {type(value).__name__}"))
        return None
    return value


def _check_example(number: int, example: dict[str, Any], report: Report) -> bool:
    """The cookbook's and Azure's checks on one example; True when its messages can be counted."""
    add = report.problems.append
    for key in example:
        if key not in EXAMPLE_KEYS:
            add(Problem(number, printable(key), "unrecognized_key", f"unrecognised key {key!r}"))
    messages = example.get("messages")
    if not isinstance(messages, list) or not messages:
        add(Problem(number, "messages", "missing_messages_list", "a non-empty 'messages' list is required"))
        return False
    countable = True
    for index, message in enumerate(messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            add(Problem(number, where, "data_type", "each message must be a JSON object"))
            countable = False
            continue
        for key in ("role", "content"):
            if key not in message and not (
                key == "content" and ("tool_calls" in message or "function_call" in message)
            ):
                add(Problem(number, f"{where}.{key}", "message_missing_key", f"missing '{key}'"))
                countable = False
        for key in message:
            if key not in MESSAGE_KEYS:
                add(
                    Problem(
                        number, f"{where}.{printable(key)}", "message_unrecognized_key", f"unrecognised key {key!r}"
                    )
                )
        role = message.get("role")
        if "role" in message and role not in ROLES:
            add(
                Problem(
                    number, f"{where}.role", "unrecognized_role", f"unrecognised role {role!r}; use {', '.join(ROLES)}"
                )
            )
        content = message.get("content")
        if "content" in message and (not isinstance(content, str) or not content.strip()):
            add(Problem(number, f"{where}.content", "missing_content", "content must be non-empty text"))
            countable = False
        if "weight" in message:
            if role != "assistant":
                add(
                    Problem(number, f"{where}.weight", "invalid_weight", "weight is only allowed on assistant messages")
                )
            elif message["weight"] not in (0, 1) or isinstance(message["weight"], bool):
                add(
                    Problem(
                        number, f"{where}.weight", "invalid_weight", f"weight must be 0 or 1, not {message['weight']!r}"
                    )
                )
    roles = [m.get("role") for m in messages if isinstance(m, dict)]
    if "assistant" not in roles:
        add(Problem(number, "messages", "example_missing_assistant_message", "no assistant message to learn from"))
    if "system" not in roles:
        add(Problem(number, "messages", "missing_system", "no system message", "warning"))
    if "user" not in roles:
        add(Problem(number, "messages", "missing_user", "no user message", "warning"))
    for index, message in enumerate(messages):
        if isinstance(message, dict) and message.get("role") == "assistant" and isinstance(message.get("content"), str):
            if 0 < len(message["content"].split()) < SHORT_ANSWER_WORDS:
                add(Problem(number, f"messages[{index}].content", "short_answer", "very short answer", "warning"))
    return countable


def _measure(number: int, example: dict[str, Any], target: Target, report: Report) -> None:
    messages = example["messages"]
    try:
        total = target.count(messages)
    except Exception as exc:  # a template that rejects this conversation shape, say
        report.problems.append(Problem(number, "messages", "template", f"the chat template rejects it: {exc}"))
        return
    report.tokens.append(total)
    report.messages.append(len(messages))
    report.assistant_tokens.append(
        sum(target.count_text(m["content"]) for m in messages if m.get("role") == "assistant")
    )
    if total > target.token_limit:
        report.problems.append(
            Problem(
                number,
                "messages",
                "too_many_tokens",
                f"{total:,} tokens; {target.model} takes at most {target.token_limit:,}",
            )
        )
