"""The saved plan: a versioned JSON representation of a ``Plan`` (``plan --out``, ``show``).

It holds everything needed to execute the plan and to render it again, and nothing secret.
Reading validates against ``schemas/plan.schema.json`` before building any value, so a wrong
version or a damaged file is refused with one clear sentence instead of a traceback later.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from reconciler.changes import (
    PAYLOAD_TYPES,
    Action,
    Change,
    Drift,
    FieldChange,
    Reason,
    ToolOutput,
)
from reconciler.errors import PlanFileError
from reconciler.model import JSON
from reconciler.planning import PLAN_FORMAT_VERSION, Binding, Plan, PlanOptions
from reconciler.schemas import load_schema

__all__ = ["PlanFileError", "plan_from_dict", "plan_from_json", "plan_to_dict"]


def plan_to_dict(plan: Plan) -> dict[str, Any]:
    """The JSON-compatible representation of ``plan`` (format ``PLAN_FORMAT_VERSION``)."""
    backend = plan.backend
    return {
        "format_version": PLAN_FORMAT_VERSION,
        "backend": None if backend is None else {
            "base_url": backend.base_url,
            "auth": backend.auth,
            "api_version": backend.api_version,
        },
        "options": {
            "project": plan.options.project,
            "prune": plan.options.prune,
            "targets": sorted(plan.options.targets),
            "recreate_unmarked": plan.options.recreate_unmarked,
        },
        "partial": plan.partial,
        "has_changes": plan.has_changes,
        "summary": {action.value: plan.count(action) for action in Action},
        "changes": [_change_to_dict(c) for c in plan.changes],
        "fingerprints": dict(plan.fingerprints),
    }


def plan_from_json(text: str | bytes) -> Plan:
    """Parse a saved plan file's content; raises ``PlanFileError`` for anything unusable."""
    try:
        data = json.loads(text)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlanFileError(f"the plan file is not valid JSON: {exc}") from exc
    return plan_from_dict(data)


def plan_from_dict(data: object) -> Plan:
    """Rebuild a ``Plan`` from its representation, refusing other versions and bad shapes."""
    if not isinstance(data, dict):
        raise PlanFileError("the plan file does not hold a JSON object; is it a saved plan?")
    version = data.get("format_version")
    if version is None:
        raise PlanFileError(
            "the file has no format_version: it is not a plan saved by `reconciler plan --out`"
        )
    if version != PLAN_FORMAT_VERSION:
        raise PlanFileError(
            f"the plan file has format version {version!r}, but this reconciler reads version "
            f"{PLAN_FORMAT_VERSION!r}; create the plan again with `reconciler plan --out`"
        )
    from jsonschema.exceptions import best_match  # only a plan file being read needs it

    error = best_match(_validator().iter_errors(data))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise PlanFileError(f"the plan file is malformed at {where}: {error.message}")
    options = data["options"]
    backend = data["backend"]
    return Plan(
        options=PlanOptions(
            project=options["project"],
            prune=options["prune"],
            targets=frozenset(options["targets"]),
            recreate_unmarked=options.get("recreate_unmarked", False),
        ),
        changes=tuple(_change_from_dict(c) for c in data["changes"]),
        fingerprints=dict(data["fingerprints"]),
        format_version=version,
        backend=None if backend is None else Binding(
            backend["base_url"], backend["auth"], backend["api_version"]
        ),
    )


@functools.cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema("plan"))


def _field_to_dict(change: FieldChange) -> dict[str, JSON]:
    return {f.name: getattr(change, f.name) for f in dataclasses.fields(FieldChange)}


def _field_from_dict(data: Mapping[str, Any]) -> FieldChange:
    return FieldChange(**{f.name: data[f.name] for f in dataclasses.fields(FieldChange)})


@dataclass(frozen=True)
class _Codec:
    """How one kind of payload value is written, read back, and shown when a payload lacks it."""

    dump: Callable[[Any], JSON]
    load: Callable[[Any], Any]
    absent: Callable[[], JSON]


#: Codecs by the payload field's declared type: a new payload field of a known type needs no
#: code here, and one of a new type fails the test that walks every payload type.
_CODECS: Mapping[str, _Codec] = {
    "CreateRequest": _Codec(dict, dict, lambda: None),
    "RunMetadata": _Codec(dict, dict, lambda: None),
    "Answers": _Codec(dict, dict, dict),
    "tuple[str, ...]": _Codec(list, tuple, list),
    "tuple[FieldChange, ...]": _Codec(
        lambda v: [_field_to_dict(f) for f in v],
        lambda v: tuple(_field_from_dict(f) for f in v),
        list,
    ),
    "tuple[ToolOutput, ...]": _Codec(
        lambda v: [{"tool_call_id": o.tool_call_id, "output": o.output} for o in v],
        lambda v: tuple(ToolOutput(o["tool_call_id"], o["output"]) for o in v),
        list,
    ),
}


def _payload_fields() -> dict[str, _Codec]:
    """Every field any payload type has, with its codec (one JSON key per field name)."""
    found: dict[str, _Codec] = {}
    for payload_type in PAYLOAD_TYPES.values():
        for f in dataclasses.fields(payload_type):
            found[f.name] = _CODECS[str(f.type)]
    return found


_PAYLOAD_FIELDS = _payload_fields()


def _change_to_dict(change: Change) -> dict[str, JSON]:
    payload = change.payload
    own = {f.name for f in dataclasses.fields(payload)}
    flat = {
        name: codec.dump(getattr(payload, name)) if name in own else codec.absent()
        for name, codec in _PAYLOAD_FIELDS.items()
    }
    return {
        "address": change.address,
        "thread_id": change.thread_id,
        "name": change.name,
        "action": change.action.value,
        "reasons": [r.value for r in change.reasons],
        "run_id": change.run_id,
        "run_status": change.run_status,
        **flat,
        "drift": [
            {
                "kind": d.kind,
                "message": d.message,
                "fields": [_field_to_dict(f) for f in d.fields],
            }
            for d in change.drift
        ],
        "source": change.source,
    }


def _change_from_dict(data: Mapping[str, Any]) -> Change:
    payload_type = PAYLOAD_TYPES[Action(data["action"])]
    payload = payload_type(**{
        f.name: _PAYLOAD_FIELDS[f.name].load(data[f.name])
        for f in dataclasses.fields(payload_type)
    })
    return Change(
        thread_id=data["thread_id"],
        name=data["name"],
        reasons=tuple(Reason(r) for r in data["reasons"]),
        payload=payload,
        run_id=data["run_id"],
        run_status=data["run_status"],
        drift=tuple(
            Drift(d["kind"], d["message"], tuple(_field_from_dict(f) for f in d["fields"]))
            for d in data["drift"]
        ),
        source=data["source"],
    )
