"""Shared fixtures. Every test runs with TUNEDESK_HOME in a temporary directory and no hub access.

Markers (declared once in pyproject.toml, enforced by --strict-markers): ``slow`` uses the real
SmolLM2, ``browser`` drives Chromium, ``gpu`` needs CUDA and is skipped without it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine

TINY = "tiny-random-llama"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_configure(config: pytest.Config) -> None:
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.pop("TUNEDESK_CONFIG", None)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if any("gpu" in item.keywords for item in items) and not cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


@pytest.fixture(scope="session")
def shared_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One TUNEDESK_HOME for the whole run, so prepared models are built once."""
    return tmp_path_factory.mktemp("tunedesk-home")


@pytest.fixture(autouse=True)
def _home(shared_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("TUNEDESK_HOME", str(shared_home))
    for name in list(os.environ):
        if name.startswith("TUNEDESK_") and name != "TUNEDESK_HOME":
            monkeypatch.delenv(name)
    yield shared_home


@pytest.fixture(scope="session")
def tiny_transformers(shared_home: Path) -> Path:
    from tunedesk.prepare import ensure_transformers

    return ensure_transformers(TINY, shared_home)


@pytest.fixture(scope="session")
def tiny_onnx_fp32(shared_home: Path, tiny_transformers: Path) -> Path:
    from tunedesk.prepare import ensure_onnx

    return ensure_onnx(TINY, shared_home, "fp32")


@pytest.fixture(scope="module")
def chromium_browser() -> Iterator:
    """Debian's chromium under Playwright. Module-scoped on purpose: sync Playwright keeps an event loop
    running in the main thread while it is open, which would break the asyncio tests of later modules."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Debian chromium is not installed; .ci/run installs it")
        pytest.skip("needs Debian chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield launched
        launched.close()


@pytest.fixture
def records(tmp_path: Path) -> Iterator[Engine]:
    """A fresh tunedesk database (SQLite, migrated to the newest revision) for one test."""
    from sqlalchemy import create_engine

    from tunedesk.db import migrate, sqlite_pragmas

    engine = create_engine(f"sqlite:///{tmp_path / 'records.db'}")
    sqlite_pragmas(engine)
    migrate(engine)
    yield engine
    engine.dispose()
