"""Manifests: paths → YAML text → located documents → desired runs with defaults merged.

The package's public face; import from here, not from the rooms, which are:

- ``documents``: the model passed between the rooms (``Problem``, ``Document``,
  ``MergedRun``, ``DocPath`` and ``format_path``, the ``apiVersion`` and ``kind`` read);
- ``sources``: paths on the command line → ``(name, text)`` pairs, read with limits;
- ``yaml_reader``: YAML text → located documents, hostile input refused, plain scalars by the
  YAML 1.2 core schema (``resolve_plain_scalar``);
- ``checks``: the JSON Schema, the API's limits and the semantic checks, in sentences, with
  "did you mean" (``suggest``);
- ``merge``: ``defaults`` merged into each run, and a valid run as a ``DesiredRun``;
- ``load``: the pipeline, ``load_manifests`` → ``ManifestSet`` (run over several processes
  for big manifests by ``reconciler.loading``, outside this package).

Everything but ``sources`` is pure. ``SourceLocation`` is the domain's (``reconciler.model``),
re-exported because every ``Problem`` carries one.
"""

from __future__ import annotations

from reconciler.manifest.checks import check_document, check_run, check_unique_names, suggest
from reconciler.manifest.documents import (
    API_VERSION,
    KIND,
    DocPath,
    Document,
    MergedRun,
    Problem,
    format_path,
)
from reconciler.manifest.load import ManifestSet, load_manifests
from reconciler.manifest.merge import merge_run
from reconciler.manifest.sources import (
    MANIFEST_SUFFIXES,
    MAX_FILE_BYTES,
    find_manifest_files,
    read_sources,
)
from reconciler.manifest.yaml_reader import (
    MAX_ALIAS_NODES,
    MAX_DEPTH,
    parse_documents,
    resolve_plain_scalar,
)
from reconciler.model import SourceLocation

__all__ = [
    "API_VERSION",
    "KIND",
    "MANIFEST_SUFFIXES",
    "MAX_ALIAS_NODES",
    "MAX_DEPTH",
    "MAX_FILE_BYTES",
    "DocPath",
    "Document",
    "ManifestSet",
    "MergedRun",
    "Problem",
    "SourceLocation",
    "check_document",
    "check_run",
    "check_unique_names",
    "find_manifest_files",
    "format_path",
    "load_manifests",
    "merge_run",
    "parse_documents",
    "read_sources",
    "resolve_plain_scalar",
    "suggest",
]
