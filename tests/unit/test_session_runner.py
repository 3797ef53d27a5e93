"""The event loop a command runs in: its result is handed back, never formatted."""

from __future__ import annotations

import pytest

from reconciler.workflow import run_session


class _Result:
    """A result that counts how often it is formatted (a plan's repr is its whole content)."""

    def __init__(self) -> None:
        self.formatted = 0

    def __repr__(self) -> str:
        self.formatted += 1
        return "_Result()"


def test_a_session_result_comes_back_without_being_formatted() -> None:
    result = _Result()

    async def main() -> _Result:
        return result

    assert run_session(main()) is result
    assert result.formatted == 0


def test_a_session_error_propagates() -> None:
    async def main() -> None:
        raise LookupError("thread_x")

    with pytest.raises(LookupError, match="thread_x"):
        run_session(main())
