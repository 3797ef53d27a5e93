"""Every check a manifest goes through before anything is sent to the API. Pure functions.

Problems are reported all at once, each located at the key or value that causes it
(``file:line:col: message``), with the path inside the document in the message. The JSON Schema
(``schemas/manifest.schema.json``) is the authority on the format; its errors are translated
here into sentences a person can act on, with the API's limits in words and a "did you mean"
(``suggest``) for near misses. Semantic checks cover what a schema cannot see: values merged
from ``defaults``, names unique per thread, answers for functions a run does not declare.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

from reconciler.identity import RESERVED_PREFIX, USER_METADATA_MAX_PAIRS
from reconciler.manifest.documents import (
    API_VERSION,
    KIND,
    DocPath,
    Document,
    MergedRun,
    Problem,
    format_path,
)
from reconciler.model import JSON, SourceLocation
from reconciler.schemas import load_schema

__all__ = ["check_document", "check_run", "check_unique_names", "suggest"]

#: Patterns of the schema, explained in words rather than regular expressions.
_PATTERN_WORDS = {
    "^[a-z0-9][a-z0-9-]*$": (
        "lower-case letters, digits and dashes, starting with a letter or digit"
    ),
    "^[a-zA-Z0-9_-]{1,64}$": "1 to 64 letters, digits, underscores or dashes",
}
#: Keys that look like they belong but are refused on purpose.
_UNSUPPORTED_HINTS = {
    "stream": "reconciler follows runs itself and does not stream them",
    "thread": "name an existing thread with thread_id",
    "tool_resources": "set tool resources on the thread or the assistant",
}
_TYPE_WORDS = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "a boolean",
    "null": "null",
}


def suggest(word: str, known: Sequence[str]) -> str:
    """`` (did you mean 'instructions'?)`` for a near miss, else nothing."""
    close = difflib.get_close_matches(word, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _show(value: JSON) -> str:
    """A short rendering of a value for a message."""
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def _kind_of(value: JSON) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    return "a mapping"


# --- the whole document -------------------------------------------------------------------


def check_document(document: Document) -> list[Problem]:
    """Shape of one document: a mapping of the known apiVersion and kind, valid by the schema.

    A document of an unknown ``apiVersion`` or ``kind`` is not checked further: its format is
    not ours to judge.
    """
    value = document.value
    if not isinstance(value, dict):
        return [
            Problem(
                document.start,
                f"document is {_kind_of(value)}; expected a mapping with apiVersion, kind "
                "and runs",
            )
        ]
    header = _check_header(document, value)
    if header:
        return header
    problems = list(_schema_problems(document))
    problems.extend(_reserved_metadata_keys(document, value))
    return problems


def _check_header(document: Document, value: Mapping[str, JSON]) -> list[Problem]:
    problems = []
    for key, expected in (("apiVersion", API_VERSION), ("kind", KIND)):
        if key in value and value[key] != expected:
            problems.append(
                Problem(
                    document.locate((key,)),
                    f"{key}: unknown {key} {_show(value[key])} (expected {expected!r})",
                )
            )
    return problems


@cache
def _validator() -> Draft202012Validator:
    """The explaining validator: imported and built only for a document that fails."""
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema("manifest"))


@cache
def _is_valid() -> Callable[[JSON], bool]:
    """The pass/fail decision, compiled once by jsonschema-rs (about 20 times faster).

    Only a document it passes skips the explaining validator; any other is judged, and
    explained with file:line:col, by ``jsonschema`` itself. Where the two could differ (regex
    dialects), a document the fast one refuses is still decided by jsonschema.
    """
    import jsonschema_rs

    is_valid: Callable[[JSON], bool] = jsonschema_rs.validator_for(
        load_schema("manifest"), validate_formats=False
    ).is_valid
    return is_valid


def _schema_problems(document: Document) -> Iterator[Problem]:
    if _is_valid()(document.value):
        return
    seen: set[tuple[SourceLocation, str]] = set()
    for error in _validator().iter_errors(document.value):
        for problem in _explain(error, document):
            marker = (problem.location, problem.message)
            if marker not in seen:
                seen.add(marker)
                yield problem


def _explain(error: ValidationError, document: Document) -> Iterator[Problem]:
    """Turn one jsonschema error into located sentences."""
    path: DocPath = tuple(error.absolute_path)
    keyword = error.validator
    limit: Any = error.validator_value
    instance: Any = error.instance
    label = format_path(path)

    if "propertyNames" in error.relative_schema_path and isinstance(instance, str):
        key_path = (*path, instance)
        where = document.locate(key_path, key=True)
        if keyword == "maxLength":
            message = f"key is {len(instance)} characters long; at most {limit} allowed"
        elif keyword == "pattern":
            words = _PATTERN_WORDS.get(str(limit), f"keys must match {limit}")
            message = f"{instance!r} is not a valid name: {words}"
        else:
            message = str(error.message)
        yield Problem(where, f"{format_path(key_path)}: {message}")
        return

    if keyword == "additionalProperties" and isinstance(instance, dict):
        schema: Any = error.schema
        known = list(schema.get("properties", {}))
        for key in instance:
            if key in known:
                continue
            key_path = (*path, key)
            hint = _UNSUPPORTED_HINTS.get(key)
            tail = f": {hint}" if hint else suggest(key, known)
            yield Problem(
                document.locate(key_path, key=True),
                f"{format_path(key_path)}: unknown key {key!r}{tail}",
            )
        return

    where = document.locate(path)
    if keyword == "required":
        for key in limit:
            if isinstance(instance, dict) and key not in instance:
                yield Problem(where, f"{label}: missing required key {key!r}")
        return
    yield Problem(where, f"{label}: {_sentence(keyword, limit, instance, path, error)}")


def _sentence(
    keyword: str, limit: Any, instance: Any, path: DocPath, error: ValidationError
) -> str:
    """What is wrong with one value, in words."""
    if keyword == "type":
        wanted = [limit] if isinstance(limit, str) else list(limit)
        words = " or ".join(_TYPE_WORDS.get(t, t) for t in wanted)
        return f"expected {words}, got {_kind_of(instance)} ({_show(instance)})"
    if keyword in ("enum", "const"):
        options = limit if keyword == "enum" else [limit]
        shown = ", ".join("null" if o is None else repr(o) for o in options)
        hint = ""
        if isinstance(instance, str):
            hint = suggest(instance, [o for o in options if isinstance(o, str)])
        return f"must be one of {shown}, got {_show(instance)}{hint}"
    if keyword == "minimum":
        return f"must be at least {limit}, got {_show(instance)}"
    if keyword == "maximum":
        return f"must be at most {limit}, got {_show(instance)}"
    if keyword == "minLength":
        return "must not be empty" if limit == 1 else f"must be at least {limit} characters long"
    if keyword == "maxLength":
        return f"must be at most {limit} characters long, got {len(instance)}"
    if keyword == "minItems":
        return f"must have at least {limit} item{'s' if limit != 1 else ''}"
    if keyword == "maxItems":
        return f"at most {limit} items allowed, got {len(instance)}"
    if keyword == "maxProperties":
        why = ""
        if path and path[-1] == "metadata" and limit == USER_METADATA_MAX_PAIRS:
            why = f" (the API allows 16; reconciler keeps {16 - limit} reserved keys)"
        return f"at most {limit} pairs allowed, got {len(instance)}{why}"
    if keyword == "pattern":
        words = _PATTERN_WORDS.get(str(limit), f"must match {limit}")
        return f"{_show(instance)} is not valid: {words}"
    return str(error.message)


def _reserved_metadata_keys(document: Document, value: Mapping[str, JSON]) -> Iterator[Problem]:
    """User metadata may not use ``reconciler.``: those keys say who owns a run."""
    places: list[tuple[DocPath, JSON]] = []
    defaults = value.get("defaults")
    if isinstance(defaults, dict):
        places.append((("defaults", "metadata"), defaults.get("metadata")))
    runs = value.get("runs")
    if isinstance(runs, list):
        places.extend(
            (("runs", index, "metadata"), run["metadata"])
            for index, run in enumerate(runs)
            if isinstance(run, dict) and _has_reserved_key(run.get("metadata"))
        )
    for path, metadata in places:
        if not isinstance(metadata, dict):
            continue
        for key in metadata:
            if key.startswith(RESERVED_PREFIX):
                key_path = (*path, key)
                yield Problem(
                    document.locate(key_path, key=True),
                    f"{format_path(key_path)}: metadata key {key!r} uses the prefix "
                    f"{RESERVED_PREFIX!r}, which is reserved for reconciler's own keys",
                )


def _has_reserved_key(metadata: JSON) -> bool:
    """Whether a run's metadata is worth a closer look (most runs': no)."""
    return isinstance(metadata, dict) and any(k.startswith(RESERVED_PREFIX) for k in metadata)


# --- each run, after defaults are merged ----------------------------------------------------


def check_run(run: MergedRun) -> list[Problem]:
    """What only the merged run shows: missing ids, the metadata budget, undeclared functions."""
    problems: list[Problem] = []
    fields = run.fields
    for required in ("thread_id", "assistant_id"):
        if required not in fields:
            problems.append(
                Problem(
                    run.document.locate(run.path),
                    f"{format_path(run.path)}: {run.describe()} has no {required}: set it on "
                    "the run or in defaults",
                )
            )
    problems.extend(_metadata_budget(run))
    problems.extend(_undeclared_functions(run))
    return problems


def _metadata_budget(run: MergedRun) -> Iterator[Problem]:
    metadata = run.fields.get("metadata")
    if not isinstance(metadata, dict) or len(metadata) <= USER_METADATA_MAX_PAIRS:
        return
    document_value = run.document.value
    own_path: DocPath = (*run.path, "metadata")
    sources = [
        _get(document_value, ("defaults", "metadata")),
        _get(document_value, own_path),
    ]
    if any(isinstance(s, dict) and len(s) > USER_METADATA_MAX_PAIRS for s in sources):
        return  # already reported by the schema, where it is written
    at = own_path if isinstance(sources[1], dict) else ("defaults", "metadata")
    yield Problem(
        run.document.locate(at, key=True),
        f"{format_path(own_path)}: {run.describe()} has {len(metadata)} metadata pairs after "
        f"merging defaults; at most "
        f"{USER_METADATA_MAX_PAIRS} allowed (the API allows 16; reconciler keeps "
        f"{16 - USER_METADATA_MAX_PAIRS} reserved keys)",
    )


def _undeclared_functions(run: MergedRun) -> Iterator[Problem]:
    """Answers and a forced tool must name what the run declares.

    A run that sets no ``tools`` uses its assistant's, which are unknown offline: nothing to
    check then.
    """
    tools = run.fields.get("tools")
    if not isinstance(tools, list):
        return
    functions = [
        t["function"]["name"]
        for t in tools
        if isinstance(t, dict)
        and t.get("type") == "function"
        and isinstance(t.get("function"), dict)
        and isinstance(t["function"].get("name"), str)
    ]
    tool_types = {t.get("type") for t in tools if isinstance(t, dict)}
    outputs = run.fields.get("tool_outputs")
    if isinstance(outputs, dict):
        for function in outputs:
            if function in functions:
                continue
            path = ("tool_outputs", function)
            yield Problem(
                run.locate(path, key=True),
                f"{format_path(run.source_path(path))}: {run.describe()} declares no function "
                f"{function!r} in its tools{suggest(function, functions)}",
            )
    choice = run.fields.get("tool_choice")
    if not isinstance(choice, dict):
        return
    kind = choice.get("type")
    function = choice.get("function")
    if kind == "function" and isinstance(function, dict):
        name = function.get("name")
        if isinstance(name, str) and name not in functions:
            name_path: DocPath = ("tool_choice", "function", "name")
            yield Problem(
                run.locate(name_path),
                f"{format_path(run.source_path(name_path))}: tool_choice names function {name!r}, "
                f"which is not in the tools of {run.describe()}{suggest(name, functions)}",
            )
    elif isinstance(kind, str) and kind != "function" and kind not in tool_types:
        type_path: DocPath = ("tool_choice", "type")
        yield Problem(
            run.locate(type_path),
            f"{format_path(run.source_path(type_path))}: tool_choice asks for {kind!r}, which is "
            f"not in the tools of {run.describe()}",
        )


def check_unique_names(runs: Sequence[MergedRun]) -> list[Problem]:
    """A name identifies a run on its thread: a second run of that name is an error.

    Runs are located only when a name repeats: that is the rare case."""
    first: dict[tuple[str, str], MergedRun] = {}
    problems: list[Problem] = []
    for run in runs:
        fields = run.fields
        thread_id = fields.get("thread_id")
        name = fields.get("name")
        if not isinstance(thread_id, str) or not isinstance(name, str):
            continue
        earlier = first.setdefault((thread_id, name), run)
        if earlier is not run:
            problems.append(
                Problem(
                    run.locate(("name",)),
                    f"{format_path((*run.path, 'name'))}: run name {name!r} is already used on "
                    f"thread {thread_id!r} at {earlier.locate(('name',))}",
                )
            )
    return problems


def _get(value: JSON, path: DocPath) -> JSON:
    for part in path:
        if isinstance(part, int) and isinstance(value, list) and 0 <= part < len(value):
            value = value[part]
        elif isinstance(part, str) and isinstance(value, dict):
            value = value.get(part)
        else:
            return None
    return value
