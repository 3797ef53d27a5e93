"""Fixtures of the PostgreSQL tests; ``pg_url`` itself comes from tests/conftest.py."""

from __future__ import annotations

import uuid

import pytest


@pytest.fixture
def project() -> str:
    """A project name of this test alone, so tests sharing one server never meet."""
    return f"pg-test-{uuid.uuid4().hex[:12]}"
