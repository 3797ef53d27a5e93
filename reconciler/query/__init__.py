"""``reconciler query``: StackQL-compatible SQL over ``openai.assistants.runs``.

``parse`` / ``parse_script`` (pure: sqlglot parses, :mod:`.compiler` checks against the
catalog) turn SQL into :class:`Statement` values; ``execute`` makes a statement's API calls
and runs a SELECT in SQLite over the rows (:mod:`.engine`); ``render_result`` shows the
:class:`QueryResult` as a table, JSON or CSV.
"""

from reconciler.query.compiler import parse, parse_script
from reconciler.query.execute import catalog_result, execute
from reconciler.query.render import FORMATS, render_result
from reconciler.query.result import QueryResult
from reconciler.query.statements import (
    CancelRun,
    Describe,
    Insert,
    QueryError,
    Select,
    ShowMethods,
    ShowResources,
    Statement,
    SubmitToolOutputs,
    Update,
    is_write,
)

__all__ = [
    "FORMATS", "CancelRun", "Describe", "Insert", "QueryError", "QueryResult", "Select",
    "ShowMethods", "ShowResources", "Statement", "SubmitToolOutputs", "Update",
    "catalog_result", "execute", "is_write", "parse", "parse_script", "render_result",
]
