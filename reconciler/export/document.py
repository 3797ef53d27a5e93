"""Writing an export as YAML: the header, one ``Runs`` document per thread, comments.

Block style, ``|`` blocks for multi-line text, and quotes wherever the manifest loader (YAML
1.2) would read a plain scalar as something other than the string.
"""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from reconciler.export.selection import ThreadExport
from reconciler.manifest import API_VERSION, KIND, resolve_plain_scalar
from reconciler.model import JSON

__all__ = ["header", "render_document"]


class _Dumper(yaml.SafeDumper):
    """Block style, ``|`` blocks for multi-line text, no anchors, and quotes where needed.

    PyYAML decides quoting by YAML 1.1, but manifests are read by YAML 1.2 rules (``09`` and
    ``1e5`` are numbers there): a string is quoted whenever the loader would read it
    otherwise.
    """

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # lists indented under their key, as in the docs


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    style: str | None = None
    if "\n" in data:
        style = "|"
    elif resolve_plain_scalar(data) != data or data != data.strip():
        style = "'"
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _represent_str)


def _dump(value: JSON) -> str:
    text: str = yaml.dump(
        value,
        Dumper=_Dumper,
        default_flow_style=False,
        sort_keys=False,
        allow_unicode=True,
        width=1_000_000,
        indent=2,
    )
    return text


def _indent(text: str, prefix: str) -> str:
    """Shift YAML text right; empty lines stay empty (they may be inside a ``|`` block)."""
    return "".join(prefix + line if line.strip("\n") else line
                   for line in text.splitlines(keepends=True))


def header(
    *,
    project: str,
    exported_at: str,
    schema_ref: str,
    threads: int,
    runs: int,
    to_adopt: int,
    skipped: int,
) -> str:
    exported_at = " ".join(exported_at.split())  # a comment line must stay one line
    when = f" at {exported_at}" if exported_at else ""
    lines = [
        f"# yaml-language-server: $schema={schema_ref}",
        "#",
        f"# Exported by `reconciler export`{when} for project {project!r}:",
        f"# {_count(runs, 'run')} from {_count(threads, 'thread')}, {to_adopt} not yet managed "
        f"by this project, {skipped} skipped.",
        "# A run not yet managed is adopted by writing reconciler's keys into its metadata;",
        "# until then, `reconciler plan` would create it anew.",
    ]
    return "\n".join(lines) + "\n"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


def render_document(thread: ThreadExport) -> str:
    """One ``Runs`` document for one thread; ``assistant_id`` is a default when shared."""
    assistants = {run.fields.get("assistant_id") for run in thread.runs}
    shared = assistants.pop() if len(assistants) == 1 else None
    defaults: dict[str, JSON] = {"thread_id": thread.thread_id}
    if shared is not None:
        defaults["assistant_id"] = shared
    head = _dump({"apiVersion": API_VERSION, "kind": KIND, "defaults": defaults})
    lines = [_comment(f"thread {thread.thread_id}", ""), head]
    for skipped in thread.skipped:
        lines.append(_comment(f"skipped {skipped.run_id or 'a run'}: {skipped.reason}", ""))
    if not thread.runs:
        lines.append("runs: []  # nothing to export on this thread\n")
        return "".join(lines)
    lines.append("runs:\n")
    for run in thread.runs:
        entry: dict[str, JSON] = {"name": run.name}
        for key, value in run.fields.items():
            if key == "assistant_id" and shared is not None:
                continue
            entry[key] = value
        lines.extend(_comment(comment, "  ") for comment in run.comments)
        lines.append(_indent(_dump([entry]), "  "))
    return "".join(lines)


def _comment(text: str, indent: str) -> str:
    """A YAML comment, wrapped to stay readable within 100 columns."""
    lines = textwrap.wrap(" ".join(text.split()), width=96 - len(indent)) or [""]
    first, *rest = lines
    return "".join(
        [f"{indent}# {first}\n", *(f"{indent}#   {line}\n" for line in rest)]
    )
