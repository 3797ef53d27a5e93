"""The reference OpenAPI spec as data: operations, path matching and JSON Schema validators.

The spec is OpenAPI 3.1 but still says ``nullable: true`` in places (an OpenAPI 3.0 keyword
that JSON Schema ignores), so it is rewritten once into plain JSON Schema 2020-12. The limits
the spec states only in prose (metadata sizes, function-name pattern) are added as keywords, so
requests and responses are checked against what the service actually enforced. Requests are
also checked with every object closed to unknown keys (``request_spec``), and image URLs with
a ``format: uri`` check, as the service did.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

import yaml
from jsonschema import Draft202012Validator, FormatChecker

JSON = Any

API_PREFIX = "/v1"
_FUNCTION_NAME = "^[a-zA-Z0-9_-]{1,64}$"


@dataclass(frozen=True)
class Operation:
    """One operation of the spec: where it lives and what it takes and returns."""

    operation_id: str
    method: str
    path: str
    pattern: re.Pattern[str]
    path_params: tuple[str, ...]
    request_schema: JSON | None
    body_required: bool
    response_schema: JSON
    query_params: tuple[JSON, ...]


@cache
def raw_spec() -> dict[str, JSON]:
    """The spec exactly as shipped in the package (``openapi.yaml``)."""
    text = resources.files("reconciler.emulator").joinpath("openapi.yaml").read_text("utf-8")
    loaded = yaml.safe_load(text)
    if not isinstance(loaded, dict):
        raise RuntimeError("the packaged openapi.yaml is not a mapping")
    return loaded


@cache
def json_schema_spec() -> dict[str, JSON]:
    """The spec rewritten into JSON Schema 2020-12, with the prose limits made explicit."""
    spec: dict[str, JSON] = _without_nullable(copy.deepcopy(raw_spec()))
    schemas = spec["components"]["schemas"]
    schemas["Metadata"] = {
        "anyOf": [
            {
                "type": "object",
                "maxProperties": 16,
                "propertyNames": {"maxLength": 64},
                "additionalProperties": {"type": "string", "maxLength": 512},
            },
            {"type": "null"},
        ]
    }
    schemas["FunctionObject"]["properties"]["name"]["pattern"] = _FUNCTION_NAME
    schemas["FunctionObject"]["additionalProperties"] = False  # the service refused extras
    # an image is named by a non-empty file id or URL (the service: "empty string")
    image_url = schemas["MessageContentImageUrlObject"]["properties"]["image_url"]
    image_url["properties"]["url"]["minLength"] = 1
    image_file = schemas["MessageContentImageFileObject"]["properties"]["image_file"]
    image_file["properties"]["file_id"]["minLength"] = 1
    json_schema = schemas["ResponseFormatJsonSchema"]["properties"]["json_schema"]
    json_schema["properties"]["name"]["pattern"] = _FUNCTION_NAME
    return spec


def _without_nullable(node: JSON) -> JSON:
    """Turn every OpenAPI ``nullable: true`` into a JSON Schema that also accepts null."""
    if isinstance(node, list):
        return [_without_nullable(item) for item in node]
    if not isinstance(node, dict):
        return node
    members = node.get("allOf")
    if isinstance(members, list) and {"nullable": True} in members:
        rest = [m for m in members if m != {"nullable": True}]
        inner = _without_nullable({**node, "allOf": rest})
        return {"anyOf": [inner, {"type": "null"}]}
    node = {key: _without_nullable(value) for key, value in node.items()}
    if node.pop("nullable", False) is not True:
        return node
    if isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if "enum" in node:
            node["enum"] = [*node["enum"], None]
        return node
    return {"anyOf": [node, {"type": "null"}]}


@cache
def operations() -> tuple[Operation, ...]:
    """Every operation of the spec, in the order the spec lists them."""
    spec = json_schema_spec()
    found: list[Operation] = []
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "delete"}:
                continue
            params = tuple(re.findall(r"{(\w+)}", path))
            regex = "^" + re.sub(r"{(\w+)}", r"(?P<\1>[^/]+)", path) + "$"
            body = op.get("requestBody")
            request_schema = body["content"]["application/json"]["schema"] if body else None
            response = op["responses"]["200"]["content"]["application/json"]["schema"]
            query = tuple(p for p in op.get("parameters", []) if p.get("in") == "query")
            found.append(
                Operation(
                    operation_id=op["operationId"],
                    method=method.upper(),
                    path=path,
                    pattern=re.compile(regex),
                    path_params=params,
                    request_schema=request_schema,
                    body_required=bool(body and body.get("required")),
                    response_schema=response,
                    query_params=query,
                )
            )
    return tuple(found)


@cache
def operation_ids() -> frozenset[str]:
    """The operationIds of the spec (``createRun``, ``listRuns``, …)."""
    return frozenset(op.operation_id for op in operations())


def operation_by_id(operation_id: str) -> Operation:
    """The operation with that operationId (``KeyError`` if the spec has none)."""
    for op in operations():
        if op.operation_id == operation_id:
            return op
    raise KeyError(operation_id)


def find_operation(method: str, path: str, prefix: str = API_PREFIX
                   ) -> tuple[Operation, dict[str, str]] | None:
    """The operation a request targets and its path parameters; ``path`` may carry ``prefix``."""
    if prefix and path.startswith(prefix + "/"):
        path = path[len(prefix) :]
    for op in _by_method().get(method.upper(), ()):
        match = op.pattern.match(path)
        if match is not None:
            return op, match.groupdict()
    return None


@cache
def _by_method() -> dict[str, tuple[Operation, ...]]:
    """The operations of each HTTP method, in spec order (``find_operation`` runs twice a
    request: the knobs and the app each look)."""
    found: dict[str, list[Operation]] = {}
    for op in operations():
        found.setdefault(op.method, []).append(op)
    return {method: tuple(ops) for method, ops in found.items()}


@cache
def request_spec() -> dict[str, JSON]:
    """The spec as the service applied it to requests: every object closed to unknown keys.

    The service refused unknown keys at any depth (``Unknown parameter: 'content[0].foo'.``),
    which the schema says only for the top level of each request.
    """
    spec: dict[str, JSON] = copy.deepcopy(json_schema_spec())
    schemas = spec["components"]["schemas"]
    for name, schema in list(schemas.items()):
        schemas[name] = closed(schema)
    return spec


_SUBSCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")
_SUBSCHEMAS = ("items", "not", "additionalProperties", "propertyNames", "contains")


def closed(schema: JSON) -> JSON:
    """``schema`` with every object that lists its properties closed to other keys.

    Objects that say what else they take (``additionalProperties`` set, as on metadata,
    function parameters and JSON schemas) are left as they are.
    """
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    if isinstance(out.get("properties"), dict):
        out["properties"] = {k: closed(v) for k, v in out["properties"].items()}
        out.setdefault("additionalProperties", False)
    for key in _SUBSCHEMA_LISTS:
        if isinstance(out.get(key), list):
            out[key] = [closed(member) for member in out[key]]
    for key in _SUBSCHEMAS:
        if isinstance(out.get(key), dict):
            out[key] = closed(out[key])
    return out


def _is_url(value: object) -> bool:
    """``format: uri`` as the service checked image URLs: http(s) with a host, or data:."""
    if not isinstance(value, str) or value == "":  # emptiness is minLength's to report
        return True
    if any(ch.isspace() for ch in value):
        return False
    parts = urlsplit(value)
    if parts.scheme.lower() in {"http", "https"}:
        return bool(parts.hostname)
    return parts.scheme.lower() == "data" and "," in parts.path


FORMATS = FormatChecker(formats=())
FORMATS.checks("uri")(_is_url)


@cache
def validator(schema_key: str) -> Draft202012Validator:
    """A compiled validator for a schema given by ``#/components/...`` ref or operation key.

    ``request:OP`` checks a request body the way the service did (:func:`request_spec`);
    ``response:OP`` and component refs check what the emulator answers against the spec.
    """
    spec = json_schema_spec()
    if schema_key.startswith("request:"):
        spec = request_spec()
        schema = closed(operation_by_id(schema_key[len("request:") :]).request_schema)
    elif schema_key.startswith("response:"):
        schema = operation_by_id(schema_key[len("response:") :]).response_schema
    else:
        schema = {"$ref": schema_key}
    root = {**(schema or {}), "components": spec["components"]}
    return Draft202012Validator(root, format_checker=FORMATS)


@cache
def request_passes(operation_id: str) -> Callable[[JSON], bool]:
    """A fast yes for a request body ``validator(f"request:{operation_id}")`` would pass.

    Compiled once by jsonschema-rs (about a hundred times faster), with the same ``uri``
    check. Only a yes is taken: a body it refuses, or cannot judge (a lone surrogate, a
    number beyond its range), is judged and explained by ``jsonschema`` as before; where the
    two could differ (regex dialects: ``$`` before a final newline), jsonschema-rs is the
    stricter, so that body is judged by jsonschema too.
    """
    import jsonschema_rs

    schema = closed(operation_by_id(operation_id).request_schema)
    root = {**(schema or {}), "components": request_spec()["components"]}
    is_valid = jsonschema_rs.Draft202012Validator(
        root, formats={"uri": _is_url}, validate_formats=True).is_valid

    def passes(body: JSON) -> bool:
        try:
            return bool(is_valid(body))
        except Exception:  # jsonschema-rs cannot take this value: jsonschema will judge
            return False

    return passes


def validate_response(method: str, path: str, status: int, body: JSON,
                      prefix: str = API_PREFIX) -> list[str]:
    """Problems with a response body against the spec (empty when it conforms).

    A 2xx body is checked against the operation's 200 schema; an error body against
    ``ErrorResponse``. A request the spec does not describe is itself a problem. ``path``
    is the request's path, under ``prefix`` (``/v1`` unless the emulator serves elsewhere).
    """
    found = find_operation(method, path, prefix)
    if found is None:
        return [f"{method} {path} is not an operation of the spec"]
    op, _ = found
    key = f"response:{op.operation_id}" if status < 400 else "#/components/schemas/ErrorResponse"
    return schema_problems(key, body, f"{op.operation_id} {status}")


def schema_problems(key: str, value: JSON, label: str) -> list[str]:
    """Every way ``value`` breaks the schema ``key`` names, each prefixed with ``label``."""
    problems = []
    for error in validator(key).iter_errors(value):
        where = "/".join(str(part) for part in error.absolute_path) or "(root)"
        problems.append(f"{label} at {where}: {error.message}")
    return problems
