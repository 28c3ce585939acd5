"""Deploy a fine-tuned model on Azure OpenAI: the management-plane deployment resource, and waiting for it.

Decisions:
- Deployments are Azure Resource Manager resources, not data-plane ones: a PUT on
  ``/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{account}/
  deployments/{name}`` (api-version 2024-10-01) with an Entra token for ``https://management.azure.com/.default``
  (API keys do not work there), then GETs until ``provisioningState`` is final.
- Plain httpx, not azure-mgmt-cognitiveservices: one resource, three verbs. Retries: 429 and 5xx wait
  ``retry-after`` (at most 60 s) or back off exponentially, ``max_retries`` times, then say so.
- SKUs by their CLI names: standard (regional), globalstandard, developer (Azure's ``DeveloperTier``,
  for evaluating fine-tunes cheaply, no SLA).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx

from finetune.azure_jobs import Poll
from tunedesk.azure import AzureConnection, AzureError
from tunedesk.errors import ConfigError
from tunedesk.settings import Settings

MANAGEMENT_API_VERSION = "2024-10-01"
SKUS = {"standard": "Standard", "globalstandard": "GlobalStandard", "developer": "DeveloperTier"}
Sku = Literal["standard", "globalstandard", "developer"]
FINAL_STATES = ("Succeeded", "Failed", "Canceled")


@dataclass(frozen=True)
class Account:
    """The Azure OpenAI resource as Resource Manager addresses it."""

    subscription_id: str
    resource_group: str
    account: str
    management_endpoint: str = "https://management.azure.com"

    @property
    def scope(self) -> str:
        return (
            f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"
            f"/providers/Microsoft.CognitiveServices/accounts/{self.account}"
        )


def account_from(settings: Settings, conn: AzureConnection | None = None) -> Account:
    import os

    subscription = settings.azure_subscription_id or os.environ.get("AZURE_SUBSCRIPTION_ID")
    missing = [
        name
        for name, value in (
            ("TUNEDESK_AZURE_SUBSCRIPTION_ID (or AZURE_SUBSCRIPTION_ID)", subscription),
            ("TUNEDESK_AZURE_RESOURCE_GROUP", settings.azure_resource_group),
        )
        if not value
    ]
    account = settings.azure_account or (conn.resource_name if conn else None)
    if not account:
        missing.append("TUNEDESK_AZURE_ACCOUNT")
    if missing:
        raise ConfigError(f"deployments are managed through Azure Resource Manager: set {', '.join(missing)}")
    assert subscription and settings.azure_resource_group and account
    return Account(subscription, settings.azure_resource_group, account, settings.azure_management_endpoint.rstrip("/"))


class Deployments:
    """Create, read and delete deployments of one account."""

    def __init__(
        self,
        account: Account,
        token: Callable[[], str],
        *,
        max_retries: int = 4,
        timeout_s: float = 60.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.account = account
        self.token = token
        self.max_retries = max_retries
        self.http = httpx.Client(timeout=timeout_s, transport=transport)

    @classmethod
    def from_settings(cls, settings: Settings, conn: AzureConnection) -> Deployments:
        """The deployments of the configured account, with an Entra token for Resource Manager."""
        from tunedesk.azure import MANAGEMENT_SCOPE, token_provider

        return cls(
            account_from(settings, conn),
            token_provider(MANAGEMENT_SCOPE),
            max_retries=settings.azure_max_retries,
            timeout_s=settings.azure_timeout_s,
        )

    def url(self, name: str) -> str:
        return f"{self.account.management_endpoint}{self.account.scope}/deployments/{name}"

    def _request(self, method: str, url: str, body: dict[str, Any] | None = None) -> httpx.Response:
        for attempt in range(self.max_retries + 1):
            headers = {"Authorization": f"Bearer {self.token()}"}
            try:
                response = self.http.request(
                    method, url, params={"api-version": MANAGEMENT_API_VERSION}, json=body, headers=headers
                )
            except httpx.TransportError as exc:
                if attempt == self.max_retries:
                    raise AzureError(
                        f"could not reach Azure Resource Manager at {self.account.management_endpoint} after "
                        f"{self.max_retries} retries: {type(exc).__name__}: {exc}"
                    ) from None
                time.sleep(min(8.0, 0.5 * 2**attempt))
                continue
            if response.status_code != 429 and response.status_code < 500 or attempt == self.max_retries:
                return response
            time.sleep(_retry_delay(response, attempt))
        raise AssertionError("unreachable")

    def put(
        self, name: str, model: str, *, sku: Sku = "standard", capacity: int = 1, version: str = "1"
    ) -> dict[str, Any]:
        if sku not in SKUS:
            raise ConfigError(f"unknown sku {sku!r}; choose one of: {', '.join(SKUS)}")
        body = {
            "sku": {"name": SKUS[sku], "capacity": capacity},
            "properties": {"model": {"format": "OpenAI", "name": model, "version": version}},
        }
        return _json(self._request("PUT", self.url(name), body), f"deploying {model} as {name}")

    def get(self, name: str) -> dict[str, Any] | None:
        response = self._request("GET", self.url(name))
        if response.status_code == 404:
            return None
        return _json(response, f"reading deployment {name}")

    def delete(self, name: str) -> bool:
        """True when a deployment was deleted, False when there was none."""
        response = self._request("DELETE", self.url(name))
        if response.status_code in (200, 202):
            return True
        if response.status_code in (204, 404):
            return False
        _json(response, f"deleting deployment {name}")
        return False

    def wait(self, name: str, poll: Poll, on_state: Callable[[str], None] | None = None) -> dict[str, Any]:
        """Poll until the deployment's provisioning is final; a failed one raises ``AzureError``."""
        last = None
        while True:
            resource = self.get(name)
            if resource is None:
                raise AzureError(f"deployment {name} disappeared while it was being provisioned")
            state = str(resource.get("properties", {}).get("provisioningState", "Unknown"))
            if state != last and on_state is not None:
                on_state(state)
            last = state
            if state in FINAL_STATES:
                if state != "Succeeded":
                    raise AzureError(f"deployment {name} ended {state}: {resource.get('properties', {})}")
                return resource
            poll.sleep_or_give_up(f"deployment {name}")


def _retry_delay(response: httpx.Response, attempt: int) -> float:
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(header)
        try:
            seconds = float(value) * scale if value is not None else None
        except ValueError:
            seconds = None
        if seconds is not None and 0 <= seconds <= 60:
            return seconds
    return min(8.0, 0.5 * 2**attempt)


def _json(response: httpx.Response, doing: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = {}
    if response.is_success:
        return body if isinstance(body, dict) else {}
    error = body.get("error", {}) if isinstance(body, dict) else {}
    said = f"{error.get('code', response.status_code)}: {error.get('message', response.reason_phrase)}"
    if response.status_code in (401, 403):
        raise AzureError(
            f"Azure Resource Manager refused {doing} ({response.status_code}, {said}); the signed-in identity needs "
            "the 'Cognitive Services Contributor' role on the resource (`az login`, or AZURE_CLIENT_ID/...)"
        )
    raise AzureError(f"Azure Resource Manager failed {doing} ({response.status_code}): {said}")
