"""``reconciler query``: StackQL-compatible SQL over ``openai.assistants.runs``.

``parse`` (pure) turns SQL into a :class:`Statement`; ``execute`` performs it with one
client call; ``render_result`` shows the :class:`QueryResult` as a table, JSON or CSV.
"""

from reconciler.query.execute import catalog_result, execute
from reconciler.query.parser import parse
from reconciler.query.render import FORMATS, render_result
from reconciler.query.result import QueryResult
from reconciler.query.statements import (
    CancelRun,
    Column,
    Condition,
    Describe,
    Insert,
    Op,
    OrderBy,
    QueryError,
    Select,
    ShowMethods,
    Statement,
    SubmitToolOutputs,
    Update,
    is_write,
)

__all__ = [
    "FORMATS", "CancelRun", "Column", "Condition", "Describe", "Insert", "Op", "OrderBy",
    "QueryError", "QueryResult", "Select", "ShowMethods", "Statement", "SubmitToolOutputs",
    "Update", "catalog_result", "execute", "is_write", "parse", "render_result",
]
