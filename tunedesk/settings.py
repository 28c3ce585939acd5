"""All of tunedesk's configuration, in one typed place.

Decisions:
- Sources, strongest first: explicit arguments (CLI flags), environment variables (``TUNEDESK_*``),
  a ``.env`` file in the working directory, a YAML file named by ``TUNEDESK_CONFIG``, then defaults.
- Nothing is read at import time: callers ask for ``Settings()`` (or ``load_settings``) when they
  need it, so tests can point ``TUNEDESK_HOME`` at a temporary directory.
- ``extra="forbid"``: a misspelt key in the YAML file is an error that names the key, not a
  silently ignored setting.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    YamlConfigSettingsSource,
)

from tunedesk.errors import ConfigError, validation_problems
from tunedesk.files import load_yaml

DEFAULT_SYSTEM_PROMPT = (
    "You are a friendly and precise customer-support assistant for an online store. "
    "Answer in a few short sentences, ask for an order number when you need one, never invent "
    "order details, prices or links, and offer to hand over to a human agent when you cannot help."
)


def default_home() -> Path:
    return Path("~/.cache/tunedesk").expanduser()


class Settings(BaseSettings):
    """tunedesk settings; every field can be set as ``TUNEDESK_<FIELD>`` or in the YAML file."""

    model_config = SettingsConfigDict(
        env_prefix="TUNEDESK_",
        env_file=".env",
        extra="forbid",
        validate_default=True,
    )

    home: Path = Field(default_factory=default_home, description="State directory: models, caches, databases.")
    backend: str = Field("onnx", description="Chat backend: onnx (default, fast on CPU), local, echo.")
    model: str = Field("smollm2-135m", description="Registry name, local directory or hub id of the model.")
    precision: str = Field("int4", description="ONNX precision for the onnx backend: int4, fp32.")
    adapter: Path | None = Field(None, description="LoRA adapter directory for the local backend.")
    adapters: Annotated[list[Path], NoDecode] = Field(
        default_factory=list,
        description="LoRA runs (or .onnx_adapter files) exported with `tunedesk model export-onnx --adapter-only` "
        "that the onnx backend switches between per request; comma-separated.",
    )
    device: str = Field("auto", description="Device for the local backend: auto, cpu, cuda.")
    context_window: int = Field(2048, ge=64, description="Tokens of prompt + answer a backend may use.")
    system_prompt: str = Field(DEFAULT_SYSTEM_PROMPT, description="System prompt of the support bot.")
    grounding: bool = Field(True, description="Put the best-matching policy passages into the support prompt.")
    policy: Path | None = Field(
        None, description="Policy file or folder (Markdown/text) for grounding; default: the sample store's policy."
    )
    policy_top_k: int = Field(3, ge=1, le=20, description="Most policy passages put into one prompt.")
    policy_min_score: float = Field(
        0.35, ge=-1.0, le=1.0, description="Least cosine similarity (all-MiniLM-L6-v2) of a passage to be used."
    )
    max_new_tokens: int = Field(256, ge=1, description="Longest answer, in tokens.")
    temperature: float = Field(0.0, ge=0.0, le=2.0, description="0 means greedy decoding.")
    top_p: float = Field(1.0, gt=0.0, le=1.0, description="Nucleus sampling mass (when sampling).")
    top_k: int = Field(50, ge=1, description="Sample among the k most likely tokens (when sampling).")
    repetition_penalty: float = Field(1.1, ge=1.0, le=2.0, description="Penalty for repeated tokens.")
    seed: int | None = Field(None, description="Seed for sampled decoding.")
    sentiment_model: str = Field(
        "runs/sentiment-minilm", description="Sentiment classifier of the chat's Sentiment profile: run or ONNX dir."
    )
    summarization_model: str = Field(
        "runs/summarization-smollm2",
        description="Summarizer of the chat's Summarize profile: a run, registry name or hub id; "
        "the base smollm2-135m while the default run does not exist.",
    )
    captioning_model: str = Field(
        "runs/captioning-fashion", description="Captioner of the chat's Caption profile: a run directory or hub id."
    )
    host: str = Field("127.0.0.1", description="Address the chat UI listens on.")
    port: int = Field(8000, ge=1, le=65535, description="Port the chat UI listens on.")
    workers: int = Field(
        1,
        ge=1,
        le=64,
        description="Processes of the chat service, each with its own copy of the model. ORT GenAI holds "
        "Python's GIL while it computes a token, so several cores serve several answers only as processes.",
    )
    onnx_threads: int = Field(
        0, ge=0, description="ONNX Runtime threads per model of the onnx backend; 0: ONNX Runtime's default."
    )
    max_concurrent_answers: int = Field(
        16,
        ge=1,
        description="Answers one chat process generates at once per backend (the onnx backend decodes them in one "
        "batch); later ones wait in line.",
    )
    max_waiting: int = Field(
        64, ge=0, description="Answers that may wait in line per backend and process before new ones are refused."
    )
    max_message_chars: int = Field(4000, ge=1, description="Longest chat message accepted, in characters.")
    database_url: str | None = Field(
        None,
        description="SQLAlchemy URL of tunedesk's records (jobs...); default: SQLite file in the home.",
        repr=False,  # it may carry a password
    )
    users_file: Path | None = Field(
        None, description="YAML file of chat UI users (tunedesk users add); default: users.yaml in the home."
    )
    users: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Extra read-only users as JSON {"name": {"role": "agent", "password": "<argon2 hash>"}}.',
        repr=False,  # password hashes
    )
    allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Other sites (https://portal.example.com) whose pages may call the chat service with a "
        "signed-in agent's session; comma-separated. Default: the chat's own origin only.",
    )
    # Azure OpenAI. Unset fields fall back to the openai SDK's own variables (named in each description).
    azure_endpoint: str | None = Field(
        None, description="https://<resource>.openai.azure.com; else AZURE_OPENAI_ENDPOINT."
    )
    azure_api_key: SecretStr | None = Field(None, description="API key; else AZURE_OPENAI_API_KEY. Never logged.")
    azure_api_version: str | None = Field(
        None, description="Data-plane api-version, or v1 for the /openai/v1 API; else OPENAI_API_VERSION, 2024-10-21."
    )
    azure_auth: Literal["auto", "key", "entra"] = Field(
        "auto", description="key, entra (DefaultAzureCredential), or auto: the key when one is set, else Entra ID."
    )
    azure_deployment: str | None = Field(None, description="Deployment the azure chat backend talks to.")
    azure_subscription_id: str | None = Field(
        None, description="Subscription of the resource, for deployments; else AZURE_SUBSCRIPTION_ID."
    )
    azure_resource_group: str | None = Field(None, description="Resource group of the resource, for deployments.")
    azure_account: str | None = Field(
        None, description="Resource (account) name, for deployments; default: the endpoint's host name."
    )
    azure_management_endpoint: str = Field(
        "https://management.azure.com", description="Azure Resource Manager endpoint, for deployments."
    )
    azure_max_retries: int = Field(4, ge=0, le=20, description="Retries of a 429/5xx/dropped connection.")
    azure_timeout_s: float = Field(60.0, gt=0, description="Seconds before one Azure request times out.")
    azure_answer_deadline_s: float = Field(
        60.0, gt=0, description="Seconds a chat answer may wait for Azure OpenAI to start it, retries included."
    )
    # Guardrails (chatbot/guardrails.py): checks on what the customer writes and what the bot answers.
    guardrails: bool = Field(
        True, description="Check messages and answers (prompt injection, abuse, other customers' data, leaks)."
    )
    guardrails_escalate: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["self_harm"],
        description="Guardrail categories handed over to a human instead of refused; comma-separated.",
    )
    content_safety_endpoint: str | None = Field(
        None,
        description="Azure AI Content Safety, https://<resource>.cognitiveservices.azure.com; else "
        "CONTENT_SAFETY_ENDPOINT. Unset: the local check.",
    )
    content_safety_key: SecretStr | None = Field(
        None, description="Content Safety key; else CONTENT_SAFETY_KEY; none: Entra ID. Never logged."
    )
    content_safety_threshold: int = Field(
        4, ge=1, le=7, description="Least Content Safety severity (0-7: 2 low, 4 medium, 6 high) that counts as a hit."
    )
    content_safety_timeout_s: float = Field(
        3.0, gt=0, le=60, description="Seconds the guardrails wait for Content Safety before the local check."
    )
    content_safety_max_retries: int = Field(2, ge=0, le=10, description="Retries of a Content Safety 429/5xx.")

    @field_validator("home", "users_file", "policy", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):  # TUNEDESK_ALLOWED_ORIGINS=https://a.example.com,https://b.example.com
            value = [part.strip() for part in value.split(",") if part.strip()]
        return [_origin(part) for part in value] if isinstance(value, list) else value

    @field_validator("adapters", mode="before")
    @classmethod
    def _split_adapters(cls, value: Any) -> Any:
        if isinstance(value, str):  # TUNEDESK_ADAPTERS=runs/a,runs/b
            return [Path(part.strip()).expanduser() for part in value.split(",") if part.strip()]
        return value

    @field_validator("guardrails_escalate", mode="before")
    @classmethod
    def _split_escalate(cls, value: Any) -> Any:
        if isinstance(value, str):  # TUNEDESK_GUARDRAILS_ESCALATE=self_harm,violence
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings, dotenv_settings]
        config_file = os.environ.get("TUNEDESK_CONFIG")
        if config_file:
            sources.append(YamlConfigSettingsSource(settings_cls, yaml_file=config_file))
        return tuple(sources)


def _origin(value: Any) -> Any:
    """``scheme://host[:port]`` as browsers send it in ``Origin``; anything else (a path, ``*``) is refused."""
    from urllib.parse import urlsplit

    if not isinstance(value, str):
        return value
    parts = urlsplit(value.strip().rstrip("/"))
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path or parts.query or "*" in value:
        raise ValueError(f"{value!r} is not an origin like https://portal.example.com (no path, no wildcard)")
    return f"{parts.scheme}://{parts.netloc.lower()}"


def load_settings(**overrides: Any) -> Settings:
    """Settings with ``overrides`` (CLI flags; ``None`` means "not given") on top of env and YAML."""
    given = {key: value for key, value in overrides.items() if value is not None}
    config_file = os.environ.get("TUNEDESK_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"TUNEDESK_CONFIG points to {config_file}, which is not a file")
    if config_file:  # read once here so that a broken file is an error naming file:line, not a traceback
        document = load_yaml(Path(config_file))
        if document is not None and not isinstance(document, dict):
            raise ConfigError(f"{config_file}: expected a mapping of settings, got {type(document).__name__}")
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{field or 'settings'}: {message}" for field, message in validation_problems(exc))
        where = f" (from {config_file} or TUNEDESK_* variables)" if config_file else " (from TUNEDESK_* variables)"
        raise ConfigError(f"invalid settings{where}: {problems}") from None
    except SettingsError as exc:  # a TUNEDESK_* variable that should hold JSON and does not
        raise ConfigError(f"invalid settings: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f".env: not UTF-8 (byte 0x{exc.object[exc.start]:02x}); re-save the file as UTF-8") from None
