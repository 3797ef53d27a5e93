"""Defaults merged into runs, and a merged run turned into the domain's ``DesiredRun``.

A document's ``defaults`` apply to each of its ``runs``: the run's own value wins, a null clears
a default, and ``metadata`` / ``tool_outputs`` merge key by key. Every merged value remembers
the document path it came from (``MergedRun.origins``), so that a problem found after merging
points at the line that must change. ``desired_run`` normalises a run that passed every check
(integers and numbers, tool outputs as text) into the value the planner compares.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from reconciler.identity import canonical_json
from reconciler.manifest.documents import API_VERSION, KIND, DocPath, Document, MergedRun
from reconciler.model import JSON, RUN_FIELDS, DesiredRun, DesiredState

__all__ = ["default_threads", "desired_run", "merge_run", "run_indexes"]

#: Fields merged key by key with the defaults rather than replaced whole.
_KEYED_FIELDS = ("metadata", "tool_outputs")
_INTEGER_FIELDS = ("max_prompt_tokens", "max_completion_tokens")
_NUMBER_FIELDS = ("temperature", "top_p")
#: The fields of a run's ``spec``, in the order the domain lists them.
_SPEC_ORDER = {name: position for position, name in enumerate(RUN_FIELDS) if name != "metadata"}
_STATES: dict[JSON, DesiredState] = {state.value: state for state in DesiredState}
_ACTIVE = DesiredState.ACTIVE.value


def default_threads(document: Document) -> list[str]:
    """The thread a valid document names in its ``defaults``, if any."""
    value = document.value
    defaults = value.get("defaults") if isinstance(value, dict) else None
    thread = defaults.get("thread_id") if isinstance(defaults, dict) else None
    return [thread] if isinstance(thread, str) and thread else []


def run_indexes(document: Document) -> list[int]:
    """The runs worth merging: mappings, in a document of our apiVersion and kind."""
    value = document.value
    if (
        not isinstance(value, dict)
        or value.get("apiVersion") != API_VERSION
        or value.get("kind") != KIND
        or not isinstance(value.get("runs"), list)
    ):
        return []
    return [index for index, run in enumerate(value["runs"]) if isinstance(run, dict)]


def merge_run(document: Document, index: int) -> MergedRun:
    """Merge ``defaults`` into ``runs[index]``: the run's own value wins, a null clears a
    default, and ``metadata`` / ``tool_outputs`` merge key by key.

    Where each value came from is worked out only when asked (for a problem): a valid run
    never needs it, and it costs as much as the merge."""
    return MergedRun(document, index, _merge(document, index, None), _Origins(document, index))


class _Origins(Mapping[DocPath, DocPath]):
    """``MergedRun.origins``, computed by the merge itself on first use."""

    __slots__ = ("_document", "_index", "_origins")

    def __init__(self, document: Document, index: int) -> None:
        self._document = document
        self._index = index
        self._origins: dict[DocPath, DocPath] | None = None

    def _computed(self) -> dict[DocPath, DocPath]:
        if self._origins is None:
            self._origins = {}
            _merge(self._document, self._index, self._origins)
        return self._origins

    def __getitem__(self, path: DocPath) -> DocPath:
        return self._computed()[path]

    def __iter__(self) -> Iterator[DocPath]:
        return iter(self._computed())

    def __len__(self) -> int:
        return len(self._computed())


def _merge(
    document: Document, index: int, origins: dict[DocPath, DocPath] | None
) -> dict[str, JSON]:
    """The merged fields of ``runs[index]``, and into ``origins`` (when given) the document
    path each came from."""
    value = document.value
    assert isinstance(value, dict)
    run = value["runs"][index]
    own: dict[str, JSON] = run if isinstance(run, dict) else {}
    defaults_value = value.get("defaults")
    defaults: dict[str, JSON] = defaults_value if isinstance(defaults_value, dict) else {}
    run_path: DocPath = ("runs", index)
    fields: dict[str, JSON] = {}
    if "name" in own:
        fields["name"] = own["name"]
        if origins is not None:
            origins[("name",)] = (*run_path, "name")

    for key in dict.fromkeys([*defaults, *own]) if defaults else own:
        if key == "name":
            continue
        if key in _KEYED_FIELDS:
            merged_map = _merge_keyed(key, defaults.get(key), own, run_path, origins)
            if merged_map is not None:
                fields[key] = merged_map
            continue
        chosen = own[key] if key in own else defaults[key]
        if chosen is not None:
            fields[key] = chosen
            if origins is not None:
                origins[(key,)] = (*run_path, key) if key in own else ("defaults", key)
    return fields


def _merge_keyed(
    key: str,
    base: JSON,
    own: dict[str, JSON],
    run_path: DocPath,
    origins: dict[DocPath, DocPath] | None,
) -> JSON:
    merged: dict[str, JSON] = {}
    if isinstance(base, dict):
        if origins is not None:
            origins[(key,)] = ("defaults", key)
        for name, item in base.items():
            if item is not None:
                merged[name] = item
                if origins is not None:
                    origins[(key, name)] = ("defaults", key, name)
    if key in own:
        override = own[key]
        if origins is not None:
            origins[(key,)] = (*run_path, key)
        if override is None:
            return None
        if not isinstance(override, dict):
            return override  # the schema reports it
        for name, item in override.items():
            if item is None:
                merged.pop(name, None)
            else:
                merged[name] = item
                if origins is not None:
                    origins[(key, name)] = (*run_path, key, name)
    return merged or None


def desired_run(run: MergedRun) -> DesiredRun:
    """The domain value of a run that passed every check."""
    fields = run.fields
    spec: dict[str, JSON] = {}
    for name in sorted(fields.keys() & _SPEC_ORDER.keys(), key=_SPEC_ORDER.__getitem__):
        item = fields[name]
        if name in _INTEGER_FIELDS and isinstance(item, float):
            item = int(item)
        elif name in _NUMBER_FIELDS and isinstance(item, int):
            item = float(item)  # 1 and 1.0 are one temperature, and must hash as one
        elif name == "truncation_strategy" and isinstance(item, dict):
            last = item.get("last_messages")
            if isinstance(last, float):
                item = {**item, "last_messages": int(last)}
        spec[name] = item
    outputs = fields.get("tool_outputs")
    tool_outputs = {
        function: answer if isinstance(answer, str) else canonical_json(answer)
        for function, answer in outputs.items()
    } if isinstance(outputs, dict) else {}
    metadata = fields.get("metadata")
    state = fields.get("state", _ACTIVE)
    return DesiredRun(
        thread_id=fields["thread_id"],
        name=fields["name"],
        spec=spec,
        metadata=dict(metadata) if isinstance(metadata, dict) else {},
        state=_STATES.get(state) or DesiredState(state),
        tool_outputs=tool_outputs,
        revision=int(fields.get("revision", 0)),
        location=run.document.locate(run.path),
    )
