"""One exception hierarchy for everything the CLI turns into an exit code and a sentence.

Low-level errors (httpx, YAML, JSON) are mapped to these once, at the edge, with
``raise … from exc``; messages never carry the API key.
"""

from __future__ import annotations


class ReconcilerError(Exception):
    """Base of every error reconciler reports to a user as one sentence (exit code 1)."""


class ConfigError(ReconcilerError):
    """Bad configuration: flags, environment, ``reconciler.toml``."""


class ManifestError(ReconcilerError):
    """The manifests (or ``subject``: the config file) have problems; ``problems`` holds each
    located line."""

    def __init__(self, problems: list[str], *, subject: str = "the manifests") -> None:
        self.problems = problems
        count = len(problems)
        super().__init__(f"{count} problem{'s' if count != 1 else ''} in {subject}")


class PlanFileError(ReconcilerError, ValueError):
    """A saved plan file cannot be read or is not a plan this version understands."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StalePlanError(ReconcilerError):
    """The live state a saved plan was computed from has changed since."""


class ApiError(ReconcilerError):
    """The API answered with an error status; carries what a user needs to follow it up."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
        request_id: str | None = None,
        operation: str = "",
        host: str | None = None,
    ) -> None:
        self.api_message = message
        self.status = status
        self.error_type = error_type
        self.code = code
        self.param = param
        self.request_id = request_id
        self.operation = operation
        self.host = host
        # One way to say it: "OPERATION: MESSAGE (HTTP 403 from HOST, request id REQ)".
        details: list[str] = []
        if status is not None:
            details.append(f"HTTP {status} from {host}" if host else f"HTTP {status}")
        elif host:
            details.append(f"from {host}")
        if request_id:
            details.append(f"request id {request_id}")
        suffix = f" ({', '.join(details)})" if details else ""
        super().__init__(f"{operation}: {message}{suffix}" if operation else message + suffix)


class BadRequestError(ApiError):
    """400: the request was refused as invalid (or the run's state does not allow it)."""


class ThreadBusyError(BadRequestError):
    """400: the thread already has an active run, so no run can be created on it now."""


class RunNotCancellableError(BadRequestError):
    """400: the run's status does not allow a cancel (it already ended)."""


class ToolOutputsNotAcceptedError(BadRequestError):
    """400: the run is not waiting for tool outputs (any more)."""


class AuthenticationError(ApiError):
    """401: missing or wrong API key."""


class PermissionDeniedError(ApiError):
    """403."""


class NotFoundError(ApiError):
    """404: the thread, run or assistant does not exist."""


class ConflictError(ApiError):
    """409."""


class RateLimitError(ApiError):
    """429 after every retry was spent."""


class ServerError(ApiError):
    """5xx after every retry was spent."""


class ApiConnectionError(ApiError):
    """The request may not have reached the server, or its answer was lost."""


class AmbiguousResultError(ApiConnectionError):
    """A non-idempotent request may or may not have taken effect (answer lost, 5xx).

    The caller must look at the live state before trying again: the API has no
    idempotency keys, so a blind retry of a create could make a duplicate run.
    """


class UnknownOutcomeError(ReconcilerError):
    """A create may or may not have made a run, and its settle window passed without a sign.

    Never reported as success: the next apply looks for it again (the intent journal keeps
    its attempt id) before it may create anything for that name.
    """


class ApplyError(ReconcilerError):
    """Apply finished with failed or not-attempted actions (the report says which)."""


class LimitError(ReconcilerError):
    """A plan goes beyond a limit the user set (``apply --max-creates``): refused unsent."""


class WaitTimeoutError(ReconcilerError):
    """A run did not reach the awaited status before the timeout."""
