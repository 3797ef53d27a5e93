"""Every moment the tool writes (lock holder, export header, exported runs) in one format."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

from reconciler.lock import new_holder
from reconciler.timestamps import now, utc_timestamp

ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\Z")


def test_a_moment_is_iso_8601_utc_to_the_second() -> None:
    moment = datetime(2026, 12, 1, 22, 27, 47, 999_000, tzinfo=UTC)
    assert utc_timestamp(moment) == "2026-12-01T22:27:47Z"
    assert utc_timestamp(moment.replace(tzinfo=None)) == "2026-12-01T22:27:47Z"  # naive: UTC
    paris = moment.astimezone(timezone(timedelta(hours=1)))
    assert utc_timestamp(paris) == "2026-12-01T22:27:47Z"
    assert utc_timestamp(1_796_164_067.5) == "2026-12-01T22:27:47Z"  # seconds since the epoch


def test_now_and_the_lock_holder_use_it() -> None:
    assert ISO_UTC.match(now())
    holder = new_holder("p", "reconciler apply", now=datetime(2026, 12, 1, 22, 27, 47))
    assert holder.since == "2026-12-01T22:27:47Z"
