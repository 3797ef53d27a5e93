"""Saved plans at the edge: recognise, read and write plan files, and refuse a stale one.

The representation itself (versioned JSON, validated against ``schemas/plan.schema.json``)
belongs to :mod:`reconciler.planfile`; this module adds the files and the live check.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from reconciler.client import AssistantsClient
from reconciler.errors import PlanFileError, StalePlanError
from reconciler.files import write_text_file
from reconciler.live import ThreadsRead, read_live_state
from reconciler.planfile import plan_from_dict
from reconciler.planning import Plan, fingerprint
from reconciler.render import render_json

#: A plan file is a few megabytes at most; a larger file is not read as one.
_MAX_PLAN_BYTES = 256 * 1024 * 1024


def write_plan_file(path: str, plan: Plan) -> None:
    write_text_file(path, render_json(plan) + "\n")


def read_plan_file(path: str) -> Plan:
    """The saved plan in ``path``; one located sentence for anything that is not one."""
    data = _load(path, strict=True)
    return _plan(path, data)


def recognise_plan_file(paths: Sequence[str]) -> Plan | None:
    """``apply PLANFILE``: the plan when ``paths`` is one JSON object with a
    ``format_version``, else None (manifests, which may be JSON too: JSON is YAML). The file
    is read and parsed once."""
    if len(paths) != 1 or not Path(paths[0]).is_file():
        return None
    data = _load(paths[0], strict=False)
    if not isinstance(data, dict) or "format_version" not in data:
        return None
    return _plan(paths[0], data)


def _load(path: str, *, strict: bool) -> object:
    try:
        with open(path, "rb") as handle:
            head = handle.read(64)
            if not strict and not head.lstrip().startswith(b"{"):
                return None
            raw = head + handle.read(_MAX_PLAN_BYTES)
        text = raw.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        if not strict:
            return None
        raise PlanFileError(f"{path}: cannot read the plan file ({exc})") from exc
    try:
        return json.loads(text)
    except ValueError as exc:
        if not strict:
            return None  # not JSON after all: YAML in flow style, which the loader reads
        raise PlanFileError(f"{path}: not a plan file (invalid JSON: {exc})") from exc


def _plan(path: str, data: object) -> Plan:
    try:
        return plan_from_dict(data)
    except PlanFileError as exc:
        raise PlanFileError(f"{path}: {exc}") from exc


async def check_not_stale(client: AssistantsClient, saved: Plan, *,
                          on_read: ThreadsRead | None = None) -> None:
    """Terraform's "Saved plan is stale": re-read every thread the plan was computed from."""
    live = await read_live_state(client, list(saved.fingerprints), on_read=on_read)
    changed = [
        thread_id
        for thread_id, digest in saved.fingerprints.items()
        if fingerprint(live.threads[thread_id], saved.options.project) != digest
    ]
    if changed:
        more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
        raise StalePlanError(
            f"saved plan is stale: the runs of {changed[0]}{more} changed since it was made; "
            "run `reconciler plan` again"
        )
