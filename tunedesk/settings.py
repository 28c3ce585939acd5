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
    YamlConfigSettingsSource,
)

from tunedesk.errors import ConfigError, validation_problems

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
    database_url: str | None = Field(
        None, description="SQLAlchemy URL of tunedesk's records (jobs...); default: SQLite file in the home."
    )
    users_file: Path | None = Field(
        None, description="YAML file of chat UI users (tunedesk users add); default: users.yaml in the home."
    )
    users: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Extra read-only users as JSON {"name": {"role": "agent", "password": "<argon2 hash>"}}.',
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

    @field_validator("home", "users_file", "policy", mode="before")
    @classmethod
    def _expand_home(cls, value: Any) -> Any:
        return Path(value).expanduser() if isinstance(value, str | Path) else value

    @field_validator("adapters", mode="before")
    @classmethod
    def _split_adapters(cls, value: Any) -> Any:
        if isinstance(value, str):  # TUNEDESK_ADAPTERS=runs/a,runs/b
            return [Path(part.strip()).expanduser() for part in value.split(",") if part.strip()]
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


def load_settings(**overrides: Any) -> Settings:
    """Settings with ``overrides`` (CLI flags; ``None`` means "not given") on top of env and YAML."""
    given = {key: value for key, value in overrides.items() if value is not None}
    config_file = os.environ.get("TUNEDESK_CONFIG")
    if config_file and not Path(config_file).is_file():
        raise ConfigError(f"TUNEDESK_CONFIG points to {config_file}, which is not a file")
    try:
        return Settings(**given)
    except ValidationError as exc:
        problems = "; ".join(f"{field or 'settings'}: {message}" for field, message in validation_problems(exc))
        where = f" (from {config_file} or TUNEDESK_* variables)" if config_file else " (from TUNEDESK_* variables)"
        raise ConfigError(f"invalid settings{where}: {problems}") from None
