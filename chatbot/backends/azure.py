"""``azure``: an Azure OpenAI deployment (a fine-tuned model, or a base one), streamed through the openai SDK.

Decisions:
- The connection (endpoint, api-version, key or Entra ID) is ``tunedesk.azure``'s; the deployment is
  ``TUNEDESK_AZURE_DEPLOYMENT``. One async client per event loop, reused across requests.
- 429 and 5xx are retried by the SDK (``retry-after``/``retry-after-ms`` honoured up to 60 s, exponential
  backoff otherwise, ``TUNEDESK_AZURE_MAX_RETRIES`` times); what remains is one clear ``AzureError``.
  A stream that drops or stalls (no event for ``TUNEDESK_AZURE_TIMEOUT_S``) before any text arrived is
  retried from the start the same number of times; one that drops or stalls mid-answer is an error that
  says which, since the words already shown cannot be taken back. A slow but steady stream is no error:
  the customer watches it arrive.
- Content filters: a filtered prompt (400, code ``content_filter``) and a filtered answer
  (``finish_reason == "content_filter"``) raise ``ContentFilteredError``, whose message is the polite
  refusal the chat shows; the categories (hate, violence, ...) go to the log, never the text.
- No tokenizer ships for Azure models offline, so fitting the history into ``context_window`` uses the
  4-characters-a-token estimate of ``tunedesk data validate``.
- ``temperature``, ``top_p``, ``max_new_tokens`` and ``seed`` map to Azure's parameters; ``top_k`` and
  ``repetition_penalty`` have no Azure equivalent and are not sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
import weakref
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, ClassVar

from pydantic import SecretStr

from chatbot.backends.base import GenerationParams, GenerationStats
from chatbot.conversation import Message, fit_to_window
from data.validate import approximate_tokens
from tunedesk.azure import AzureConnection, AzureError, async_client, connection, error_details, explain
from tunedesk.errors import ConfigError, ContentFilteredError, GenerationError
from tunedesk.settings import Settings

log = logging.getLogger("tunedesk.azure")


def filtered_categories(results: Any) -> list[str]:
    """The categories marked ``filtered`` in an Azure ``content_filter_result(s)`` object."""
    if not isinstance(results, dict):
        return []
    return sorted(name for name, verdict in results.items() if isinstance(verdict, dict) and verdict.get("filtered"))


class AzureBackend:
    name: ClassVar[str] = "azure"
    can_stream: ClassVar[bool] = True
    needs_key: ClassVar[bool] = True

    def __init__(
        self,
        azure_deployment: str | None = None,
        context_window: int = 2048,
        azure_endpoint: str | None = None,
        azure_api_key: SecretStr | None = None,
        azure_api_version: str | None = None,
        azure_auth: str = "auto",
        azure_max_retries: int = 4,
        azure_timeout_s: float = 60.0,
        azure_answer_deadline_s: float = 60.0,
    ) -> None:
        if not azure_deployment:
            raise ConfigError("the azure backend needs a deployment: set TUNEDESK_AZURE_DEPLOYMENT")
        self.deployment = azure_deployment
        self.context_window = context_window
        self.conn: AzureConnection = connection(
            Settings.model_construct(
                azure_endpoint=azure_endpoint,
                azure_api_key=azure_api_key,
                azure_api_version=azure_api_version,
                azure_auth=azure_auth,
                azure_max_retries=azure_max_retries,
                azure_timeout_s=azure_timeout_s,
            )
        )
        self.deadline_s = azure_answer_deadline_s  # the SDK's retries honour retry-after each time: bound the sum
        self._clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = weakref.WeakKeyDictionary()
        self.last_stats: GenerationStats | None = None

    @classmethod
    def prepare(cls, settings: Settings, progress: Callable[[str], None]) -> None:
        """Nothing to build; fail early (before the UI starts) when the connection is not configured."""
        if not settings.azure_deployment:
            raise ConfigError("the azure backend needs a deployment: set TUNEDESK_AZURE_DEPLOYMENT")
        connection(settings)

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "deployment": self.deployment,
            "endpoint": self.conn.endpoint,
            "api_version": self.conn.api_version,
            "auth": self.conn.auth,
        }

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return approximate_tokens(list(messages))  # type: ignore[arg-type]

    def _client(self) -> Any:
        loop = asyncio.get_running_loop()
        if loop not in self._clients:
            self._clients[loop] = async_client(self.conn)
        return self._clients[loop]

    def stream(self, messages: Sequence[Message], params: GenerationParams) -> AsyncIterator[str]:
        fitted = fit_to_window(messages, self.count_tokens, self.context_window - params.max_new_tokens)
        return self._stream(fitted, params)

    async def complete(self, messages: Sequence[Message], params: GenerationParams) -> str:
        return "".join([piece async for piece in self.stream(messages, params)])

    async def _stream(self, messages: list[Message], params: GenerationParams) -> AsyncIterator[str]:
        import openai

        request: dict[str, Any] = {
            "model": self.deployment,
            "messages": messages,
            "stream": True,
            "max_tokens": params.max_new_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.seed is not None:
            request["seed"] = params.seed
        stats = GenerationStats(prompt_tokens=self.count_tokens(messages))
        started = time.perf_counter()
        drops = 0
        while True:
            produced = False
            try:
                left = self.deadline_s - (time.perf_counter() - started)
                try:
                    stream = await asyncio.wait_for(self._client().chat.completions.create(**request), max(0.0, left))
                except TimeoutError:
                    log.warning("Azure OpenAI did not start an answer within %g s", self.deadline_s)
                    raise GenerationError(
                        f"Azure OpenAI did not start the answer within {self.deadline_s:g} s (busy or throttled); "
                        "please ask again in a moment"
                    ) from None
                async for chunk in stream:
                    if not chunk.choices:  # prompt_filter_results, usage
                        continue
                    choice = chunk.choices[0]
                    text = choice.delta.content if choice.delta else None
                    if text:
                        if not produced:
                            stats.ttft_s = time.perf_counter() - started
                        produced = True
                        stats.completion_tokens += 1
                        yield text
                    if choice.finish_reason == "content_filter":
                        extra = choice.model_extra or {}
                        raise self._filtered("answer", filtered_categories(extra.get("content_filter_results")))
                stats.total_s = time.perf_counter() - started
                self.last_stats = stats
                return
            except openai.BadRequestError as exc:
                details = error_details(exc)
                if details.get("code") == "content_filter":
                    inner = details.get("innererror") or {}
                    raise self._filtered("prompt", filtered_categories(inner.get("content_filter_result"))) from None
                raise explain(exc, self.conn, what=f"Azure OpenAI deployment '{self.deployment}'") from None
            except openai.NotFoundError as exc:
                raise AzureError(
                    f"the Azure OpenAI deployment '{self.deployment}' does not exist at {self.conn.endpoint} "
                    f"({error_details(exc).get('code', 404)}); deploy one (tunedesk finetune azure deploy) or set "
                    "TUNEDESK_AZURE_DEPLOYMENT",
                    status=404,
                ) from None
            except openai.APIStatusError as exc:
                raise explain(exc, self.conn, what=f"Azure OpenAI deployment '{self.deployment}'") from None
            except openai.APIConnectionError as exc:
                if produced and isinstance(exc, openai.APITimeoutError):
                    raise GenerationError(
                        f"Azure OpenAI stopped sending the answer for more than {self.conn.timeout_s:g} s; "
                        "please ask again"
                    ) from None
                if produced:
                    raise GenerationError(
                        "the connection to Azure OpenAI dropped in the middle of the answer; please ask again"
                    ) from None
                if drops >= self.conn.max_retries:
                    raise explain(exc, self.conn, what=f"Azure OpenAI deployment '{self.deployment}'") from None
                drops += 1
                log.warning("Azure OpenAI stream dropped before any text (%s); retry %d", type(exc).__name__, drops)
                await asyncio.sleep(min(8.0, 0.25 * 2**drops))

    def _filtered(self, where: str, categories: list[str]) -> ContentFilteredError:
        log.warning(
            "Azure content filter blocked the %s (deployment %s; categories: %s)",
            where,
            self.deployment,
            ", ".join(categories) or "not given",
        )
        return ContentFilteredError(where, categories)
