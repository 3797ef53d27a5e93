"""Fixtures: a fake clock, a server on loopback, SDK clients checked against the spec."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from openai import OpenAI

from reconciler.emulator import BackgroundServer
from tests.emulator.support import FakeClock, SpecChecker, make_config, sdk_client


@pytest.fixture
def spec_checker() -> Iterator[SpecChecker]:
    checker = SpecChecker()
    yield checker
    assert checker.problems == []


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def server() -> Iterator[BackgroundServer]:
    with BackgroundServer(make_config()) as srv:
        yield srv


@pytest.fixture
def client(server: BackgroundServer, spec_checker: SpecChecker) -> OpenAI:
    return sdk_client(server.base_url, spec_checker)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The SDK marks every Assistants call deprecated; that is expected here."""
    for item in items:
        if "tests/emulator/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))
