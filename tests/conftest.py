"""Fixtures for every test folder: ``pg_url``, a throwaway PostgreSQL (see tests/pg/support.py)."""

from tests.pg.support import pg_url

__all__ = ["pg_url"]
