"""One way to reach Azure OpenAI: endpoint, api-version and credentials from settings, and clear errors.

Decisions:
- Settings first (``TUNEDESK_AZURE_*``), then the openai SDK's own variables (``AZURE_OPENAI_ENDPOINT``,
  ``AZURE_OPENAI_API_KEY``, ``OPENAI_API_VERSION``), so a shell already set up for the SDK works as is.
  A missing endpoint or credential is a ``ConfigError`` that names the variables to set.
- Auth is an API key or Entra ID. Entra uses ``DefaultAzureCredential`` (environment, workload and
  managed identity, Azure CLI, ...; ``AZURE_TOKEN_CREDENTIALS`` narrows the chain) behind
  ``get_bearer_token_provider``, which caches and refreshes tokens. ``auto`` picks the key when one is set.
- ``api_version="v1"`` talks to the version-less ``/openai/v1/`` API with the plain ``OpenAI`` client,
  as Microsoft documents for it; any other value is a dated data-plane version on ``AzureOpenAI``.
- The key lives in a ``SecretStr`` and is left out of every repr; error messages name variables, never values.
- The SDK's retries stay on (``max_retries``): they honour ``retry-after``/``retry-after-ms`` up to 60 s
  and back off exponentially otherwise. What is left when they give up becomes one ``AzureError`` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

from pydantic import SecretStr

from tunedesk.errors import ConfigError, TunedeskError
from tunedesk.settings import Settings

if TYPE_CHECKING:
    import openai

DEFAULT_API_VERSION = "2024-10-21"
COGNITIVE_SCOPE = "https://cognitiveservices.azure.com/.default"
MANAGEMENT_SCOPE = "https://management.azure.com/.default"


class AzureError(TunedeskError):
    """Azure OpenAI answered with an error, or could not be reached; the message says which and what to do."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


@dataclass(frozen=True)
class AzureConnection:
    """Where and how to reach one Azure OpenAI resource."""

    endpoint: str  # scheme://host[:port], no trailing slash
    api_version: str  # a dated data-plane version, or "v1"
    auth: Literal["key", "entra"]
    api_key: SecretStr | None = field(default=None, repr=False)
    max_retries: int = 4
    timeout_s: float = 60.0

    @property
    def v1(self) -> bool:
        return self.api_version == "v1"

    @property
    def resource_name(self) -> str:
        """The account name Azure derives the endpoint from: ``https://<name>.openai.azure.com``."""
        return (urlparse(self.endpoint).hostname or "").split(".")[0]


def connection(settings: Settings) -> AzureConnection:
    """The configured connection; a ``ConfigError`` naming the variable when something is missing."""
    endpoint = settings.azure_endpoint or os.environ.get("AZURE_OPENAI_ENDPOINT")
    if not endpoint:
        raise ConfigError(
            "no Azure OpenAI endpoint: set TUNEDESK_AZURE_ENDPOINT (or AZURE_OPENAI_ENDPOINT) to "
            "https://<resource>.openai.azure.com"
        )
    parsed = urlparse(endpoint.strip())
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(
            f"TUNEDESK_AZURE_ENDPOINT must be an http(s) URL (https://<resource>.openai.azure.com), not {endpoint!r}"
        )
    key = settings.azure_api_key
    if key is None and os.environ.get("AZURE_OPENAI_API_KEY"):
        key = SecretStr(os.environ["AZURE_OPENAI_API_KEY"])
    auth: Literal["key", "entra"]
    if settings.azure_auth == "key":
        if key is None:
            raise ConfigError(
                "TUNEDESK_AZURE_AUTH=key but no key: set TUNEDESK_AZURE_API_KEY (or AZURE_OPENAI_API_KEY)"
            )
        auth = "key"
    else:
        auth = "key" if settings.azure_auth == "auto" and key is not None else "entra"
    return AzureConnection(
        endpoint=f"{parsed.scheme}://{parsed.netloc}",
        api_version=settings.azure_api_version or os.environ.get("OPENAI_API_VERSION") or DEFAULT_API_VERSION,
        auth=auth,
        api_key=key if auth == "key" else None,
        max_retries=settings.azure_max_retries,
        timeout_s=settings.azure_timeout_s,
    )


@functools.cache
def _default_credential() -> Any:
    try:
        from azure.identity import DefaultAzureCredential
    except ImportError:
        raise ConfigError("Entra ID sign-in needs azure-identity: pip install 'tunedesk[azure]'") from None
    return DefaultAzureCredential()


def token_provider(scope: str = COGNITIVE_SCOPE) -> Callable[[], str]:
    """A callable returning a fresh Entra ID bearer token for ``scope`` (cached until near expiry)."""
    from azure.identity import get_bearer_token_provider

    provider = get_bearer_token_provider(_default_credential(), scope)

    def token() -> str:
        try:
            return str(provider())
        except Exception as exc:  # azure-identity raises ClientAuthenticationError with the whole chain's story
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise AzureError(
                f"could not get an Entra ID token for {scope} ({first_line}); sign in with `az login`, set "
                "AZURE_CLIENT_ID/AZURE_TENANT_ID/AZURE_CLIENT_SECRET, or use an API key (TUNEDESK_AZURE_API_KEY)"
            ) from None

    return token


def _openai() -> Any:
    try:
        import openai
    except ImportError:
        raise ConfigError("the Azure features need the openai SDK: pip install 'tunedesk[azure]'") from None
    return openai


def client(conn: AzureConnection) -> openai.OpenAI:
    """A synchronous client (``AzureOpenAI``, or ``OpenAI`` on the v1 path)."""
    return _client(conn, asynchronous=False)  # type: ignore[no-any-return]


def async_client(conn: AzureConnection) -> openai.AsyncOpenAI:
    """An asyncio client, for the chat backend and concurrent evaluation."""
    return _client(conn, asynchronous=True)  # type: ignore[no-any-return]


def _client(conn: AzureConnection, *, asynchronous: bool) -> Any:
    openai = _openai()
    options: dict[str, Any] = {"max_retries": conn.max_retries, "timeout": conn.timeout_s}
    credential: Any = conn.api_key.get_secret_value() if conn.api_key is not None else token_provider()
    if asynchronous and conn.api_key is None:
        credential = _awaitable(credential)
    if conn.v1:
        cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
        return cls(base_url=f"{conn.endpoint}/openai/v1/", api_key=credential, **options)
    options["api_key" if conn.api_key is not None else "azure_ad_token_provider"] = credential
    cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
    return cls(azure_endpoint=conn.endpoint, api_version=conn.api_version, **options)


def _awaitable(provider: Callable[[], str]) -> Callable[[], Awaitable[str]]:
    """An async token provider: azure-identity's is synchronous and may do I/O, so it runs in a thread."""

    async def token() -> str:
        return await asyncio.to_thread(provider)

    return token


def error_details(exc: Any) -> dict[str, Any]:
    """Azure's ``error`` object of an ``APIStatusError`` (``code``, ``message``, ``param``, ``innererror``...)."""
    body = getattr(exc, "body", None)
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return dict(body["error"])
    return dict(body) if isinstance(body, dict) else {}


def explain(exc: BaseException, conn: AzureConnection | None = None, *, what: str = "Azure OpenAI") -> AzureError:
    """One clear line for an openai SDK exception (raised after the SDK's own retries)."""
    openai = _openai()
    where = f" at {conn.endpoint}" if conn else ""
    retries = f" after {conn.max_retries} retries" if conn else ""
    if isinstance(exc, openai.APITimeoutError):
        return AzureError(f"{what}{where} did not answer in time{retries} (TUNEDESK_AZURE_TIMEOUT_S)")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return AzureError(f"could not reach {what}{where}{retries}: {type(cause).__name__}: {cause}")
    if not isinstance(exc, openai.APIStatusError):
        return AzureError(f"{what} failed: {type(exc).__name__}: {exc}")
    status = exc.status_code
    details = error_details(exc)
    code = details.get("code") or getattr(exc, "code", None)
    message = str(details.get("message") or exc.message).strip()
    param = details.get("param")
    said = f"{code}: {message}" if code else message
    if param:
        said += f" (param: {param})"
    if status == 401:
        how = (
            "TUNEDESK_AZURE_API_KEY / AZURE_OPENAI_API_KEY" if conn and conn.auth == "key" else "your Entra ID sign-in"
        )
        return AzureError(f"{what}{where} refused the credentials (401): check {how}", status=status, code=code)
    if status == 403:
        return AzureError(
            f"{what}{where} denied access (403): the identity needs a role such as 'Cognitive Services OpenAI "
            f"Contributor' on the resource; {said}",
            status=status,
            code=code,
        )
    if status == 429:
        wait = exc.response.headers.get("retry-after")
        hint = f"; Azure asks to wait {wait} s" if wait else ""
        return AzureError(
            f"{what}{where} is rate-limiting requests (429) and still was{retries}{hint}; try again later or raise "
            "the deployment's quota",
            status=status,
            code=code,
        )
    if status >= 500:
        return AzureError(f"{what}{where} kept failing ({status}){retries}: {said}", status=status, code=code)
    return AzureError(f"{what}{where} rejected the request ({status}): {said}", status=status, code=code)


@contextlib.contextmanager
def azure_errors(conn: AzureConnection | None = None, *, what: str = "Azure OpenAI") -> Iterator[None]:
    """Turn openai SDK exceptions raised inside the block into ``AzureError`` (one line, no traceback)."""
    openai = _openai()
    try:
        yield
    except openai.OpenAIError as exc:
        raise explain(exc, conn, what=what) from exc
