"""Request validation against the spec, worded as the real service words its 400s.

jsonschema finds the problems; this module picks the one the service would have reported
first and phrases it (``Unrecognized request argument supplied: foo``, ``Invalid type for
'temperature': expected a decimal, but got a string instead.``) with ``param`` set.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jsonschema.exceptions import (
    ValidationError,
)

from reconciler.emulator.errors import EmulatorError, bad_request
from reconciler.emulator.spec import Operation, request_passes, validator

JSON = Any

_TYPE_NAMES = {
    "string": "a string",
    "number": "a decimal",
    "integer": "an integer",
    "boolean": "a boolean",
    "object": "an object",
    "array": "an array",
    "null": "null",
}


def json_type(value: JSON) -> str:
    """The JSON type of a decoded value, as the service names it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def param_path(path: Iterable[str | int]) -> str:
    """``['tools', 0, 'function', 'name']`` → ``tools[0].function.name``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


UNPARSABLE_BODY = (
    "We could not parse the JSON body of your request. (HINT: This likely means you "
    "aren't using your HTTP library correctly. The OpenAI API expects a JSON payload, "
    "but what was sent was not valid JSON. If you have trouble figuring out how to fix "
    "this, please contact us through our help center at help.openai.com.)"
)


def parse_json_body(raw: bytes, *, required: bool) -> JSON:
    """Decode a request body; an empty body counts as ``{}`` only when the body is optional.

    Where the spec requires a body (every create and modify but ``createThread``), no body
    at all is no JSON at all: the service's parse error, as for any body that is not JSON.
    """
    if not raw.strip():
        if required:
            raise bad_request(UNPARSABLE_BODY)
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request(UNPARSABLE_BODY) from None


def validate_body(op: Operation, body: JSON) -> None:
    """Raise the service's 400 for the first problem of a request body, if any."""
    if op.request_schema is None:
        return
    if not isinstance(body, dict):
        raise bad_request(
            f"Invalid type for body: expected an object, but got {_TYPE_NAMES[json_type(body)]}"
            " instead.",
            code="invalid_type",
        )
    if request_passes(op.operation_id)(body):
        return
    errors = list(validator(f"request:{op.operation_id}").iter_errors(body))
    if errors:
        raise _to_emulator_error(_pick(errors))


def _pick(errors: list[ValidationError]) -> ValidationError:
    """The error to report: unknown fields first, then the shallowest, in document order."""
    for error in errors:
        if error.validator == "additionalProperties" and not error.absolute_path:
            return error
    return min(errors, key=lambda e: len(e.absolute_path))


def _leaf(error: ValidationError) -> ValidationError:
    """Descend through anyOf/oneOf to the branch the value was most plausibly meant for.

    Branches that want another JSON type are set aside, then those whose discriminator
    (``"type": "image_url"``) the value does not carry; if every branch wants another type,
    the error stays at this level and is reported as a type error naming the accepted types.
    """
    while error.validator in {"anyOf", "oneOf"} and error.context:
        branches: dict[object, list[ValidationError]] = {}
        for sub in error.context:
            branch = sub.relative_schema_path[0] if sub.relative_schema_path else None
            branches.setdefault(branch, []).append(sub)
        plausible = [
            subs for subs in branches.values()
            if not any(s.validator == "type" and not s.relative_path for s in subs)
        ]
        if not plausible:
            return error
        matching = [subs for subs in plausible
                    if not any(_is_discriminator_error(s) for s in subs)]
        if not matching:
            unknown = _unknown_kind(plausible)
            if unknown is not None:
                return unknown
        candidates = [s for subs in (matching or plausible) for s in subs]
        error = max(candidates, key=lambda e: len(e.absolute_path))
    return error


def _unknown_kind(branches: list[list[ValidationError]]) -> ValidationError | None:
    """A ``type`` no branch takes, as one enum error listing every branch's kind."""
    found = [e for subs in branches for e in subs if _is_discriminator_error(e)]
    paths = {tuple(e.absolute_path) for e in found}
    if len(paths) != 1:
        return None
    kinds: list[JSON] = []
    for e in found:
        kinds += [k for k in e.validator_value if k not in kinds]
    return ValidationError("no such kind", validator="enum", validator_value=kinds,
                           instance=found[0].instance, path=list(paths.pop()))


def _is_discriminator_error(error: ValidationError) -> bool:
    path = list(error.relative_path)
    return bool(error.validator == "enum" and path and path[-1] == "type")


def _expected_types(error: ValidationError) -> list[str]:
    if error.validator == "type":
        value = error.validator_value
        return [value] if isinstance(value, str) else list(value)
    found: list[str] = []
    for sub in error.context or []:
        if sub.validator == "type" and not sub.relative_path:
            for name in _expected_types(sub):
                if name not in found:
                    found.append(name)
    return found


_Path = list[str | int]
_Phrase = Callable[[ValidationError, _Path, str], EmulatorError]


def _to_emulator_error(error: ValidationError) -> EmulatorError:
    """The service's 400 for one jsonschema error, phrased by the keyword that failed."""
    error = _leaf(error)
    path = list(error.absolute_path)
    param = param_path(path)
    phrase = _PHRASES.get(str(error.validator))
    if phrase is not None:
        return phrase(error, path, param)
    return bad_request(f"Invalid '{param or 'body'}': {error.message}.", param=param or None,
                       code="invalid_value")


def _unknown_field(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    allowed = set(error.schema.get("properties", {}))
    extra = sorted(k for k in error.instance if k not in allowed)
    name = extra[0] if extra else "?"
    if not path:
        return bad_request(f"Unrecognized request argument supplied: {name}", param=name)
    full = param_path([*path, name])
    return bad_request(f"Unknown parameter: '{full}'.", param=full, code="unknown_parameter")


def _missing_field(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    missing = [k for k in error.validator_value if k not in error.instance]
    full = param_path([*path, missing[0] if missing else "?"])
    return bad_request(f"Missing required parameter: '{full}'.", param=full,
                       code="missing_required_parameter")


def _wrong_type(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    value = error.instance
    expected = [t for t in _expected_types(error) if t != "null"]
    if expected and json_type(value) not in expected:
        if expected == ["integer", "number"] or expected == ["number"]:
            wanted = "a decimal"
        else:
            wanted = " or ".join(_TYPE_NAMES[t] for t in expected)
        got = _TYPE_NAMES[json_type(value)]
        return bad_request(
            f"Invalid type for '{param}': expected {wanted}, but got {got} instead.",
            param=param, code="invalid_type",
        )
    return bad_request(f"Invalid value for '{param}'.", param=param, code="invalid_value")


def _not_allowed(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    kind = error.validator
    options = error.validator_value if kind == "enum" else [error.validator_value]
    shown = spoken_list([f"'{o}'" for o in options if o is not None])
    return bad_request(f"Invalid value: '{error.instance}'. Supported values are: {shown}.",
                       param=param, code="invalid_value")


def spoken_list(items: list[str]) -> str:
    """``'a'``, ``'a' and 'b'``, ``'a', 'b', and 'c'``: how the service lists choices."""
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + ", and " + items[-1]


def _bad_format(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    return bad_request(
        f"Invalid '{param}'. Expected a valid URL, but got a value with an invalid format.",
        param=param, code="invalid_value",
    )


def _out_of_range(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    kind, value = error.validator, error.instance
    number = "integer" if isinstance(value, int) else "decimal"
    below = kind in {"minimum", "exclusiveMinimum"}
    sign = (">=" if kind == "minimum" else ">") if below else (
        "<=" if kind == "maximum" else "<")
    where = "below minimum" if below else "above maximum"
    code = f"{number}_{'below_min' if below else 'above_max'}_value"
    return bad_request(
        f"Invalid '{param}': {number} {where} value. Expected a value {sign} "
        f"{error.validator_value}, but got {value} instead.",
        param=param, code=code,
    )


def _bad_length(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    """``minLength``/``maxLength`` of a string, ``minItems``/``maxItems`` of an array."""
    if error.validator == "minLength" and error.instance == "":
        return bad_request(
            f"Invalid '{param}': empty string. Expected a string with minimum length "
            f"{error.validator_value}, but got an empty string instead.",
            param=param, code="empty_string",
        )
    if error.validator in {"maxLength", "minLength"}:
        kind, a, too = "string", "a string", "long" if error.validator == "maxLength" else "short"
    else:
        kind, a, too = "array", "an array", "long" if error.validator == "maxItems" else "short"
    bound = "maximum" if too == "long" else "minimum"
    return bad_request(
        f"Invalid '{param}': {kind} too {too}. Expected {a} with {bound} length "
        f"{error.validator_value}, but got {a} with length {len(error.instance)} instead.",
        param=param, code=f"{kind}_{'above_max' if too == 'long' else 'below_min'}_length",
    )


def _too_many_properties(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    return bad_request(
        f"Invalid '{param}': too many properties. Expected an object with at most "
        f"{error.validator_value} properties, but got an object with {len(error.instance)} "
        "properties instead.",
        param=param, code="object_above_max_size",
    )


def _long_key(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    long_keys = [k for k in error.instance if len(k) > 64]
    key = long_keys[0] if long_keys else "?"
    return bad_request(
        f"Invalid '{param}': key '{key[:80]}' is too long. Expected a key with maximum "
        f"length 64, but got a key with length {len(key)} instead.",
        param=param, code="string_above_max_length",
    )


def _no_match(error: ValidationError, path: _Path, param: str) -> EmulatorError:
    return bad_request(
        f"Invalid '{param}': string does not match pattern. Expected a string that "
        f"matches the pattern '{error.validator_value}'.",
        param=param, code="invalid_value",
    )


_PHRASES: dict[str, _Phrase] = {
    "additionalProperties": _unknown_field,
    "required": _missing_field,
    **dict.fromkeys(("type", "anyOf", "oneOf"), _wrong_type),
    **dict.fromkeys(("enum", "const"), _not_allowed),
    **dict.fromkeys(("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"),
                    _out_of_range),
    **dict.fromkeys(("maxLength", "minLength", "maxItems", "minItems"), _bad_length),
    "maxProperties": _too_many_properties,
    "propertyNames": _long_key,
    "pattern": _no_match,
    "format": _bad_format,
}


def list_params(query: Mapping[str, str]) -> tuple[int, str, str | None, str | None]:
    """Validate ``limit``, ``order``, ``after``, ``before`` of a list request."""
    raw_limit = query.get("limit", "20")
    try:
        limit = int(raw_limit)
    except ValueError:
        raise bad_request(
            "Invalid type for 'limit': expected an integer, but got a string instead.",
            param="limit", code="invalid_type",
        ) from None
    if limit < 1:
        raise bad_request(
            f"Invalid 'limit': integer below minimum value. Expected a value >= 1, but got "
            f"{limit} instead.", param="limit", code="integer_below_min_value",
        )
    if limit > 100:
        raise bad_request(
            f"Invalid 'limit': integer above maximum value. Expected a value <= 100, but got "
            f"{limit} instead.", param="limit", code="integer_above_max_value",
        )
    order = query.get("order", "desc")
    if order not in {"asc", "desc"}:
        raise bad_request(f"Invalid value: '{order}'. Supported values are: 'asc' and 'desc'.",
                          param="order", code="invalid_value")
    return limit, order, query.get("after") or None, query.get("before") or None


INCLUDE_VALUES = ("step_details.tool_calls[*].file_search.results[*].content",)


def include_params(values: list[str]) -> None:
    """Refuse ``include[]`` values the spec does not list."""
    for value in values:
        if value not in INCLUDE_VALUES:
            raise bad_request(
                f"Invalid value: '{value}'. Supported values are: '{INCLUDE_VALUES[0]}'.",
                param="include", code="invalid_value",
            )
