"""One way to write a moment: ISO 8601 in UTC to the second, ``2026-12-01T22:27:47Z``.

The lock's holder record, the export header and the runs an export names all say when
something happened; they say it alike, so a person can compare them and a tool can parse them.
"""

from __future__ import annotations

from datetime import UTC, datetime

#: The ``strftime`` pattern of :func:`utc_timestamp`.
FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utc_timestamp(moment: datetime | float) -> str:
    """``moment`` (a datetime, naive ones taken as UTC, or seconds since the epoch) as
    ``YYYY-MM-DDTHH:MM:SSZ``."""
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, tz=UTC)
    elif moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(FORMAT)


def now() -> str:
    """This moment, as :func:`utc_timestamp` writes it."""
    return utc_timestamp(datetime.now(UTC))
