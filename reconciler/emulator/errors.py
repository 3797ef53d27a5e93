"""The error the emulator answers with, in the real service's body shape and wording.

Named ``EmulatorError`` so it is never mistaken for the client's ``reconciler.errors.ApiError``
(what the reconciler raises when a server answers with an error).
"""

from __future__ import annotations

from typing import Any


class EmulatorError(Exception):
    """An HTTP error reply: ``{"error": {message, type, param, code}}`` with a status."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code

    def body(self) -> dict[str, Any]:
        """The JSON body of the reply."""
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.code,
            }
        }


def not_found(kind: str, object_id: str) -> EmulatorError:
    """404 as the service words it: ``No run found with id 'run_x'.``"""
    return EmulatorError(404, f"No {kind} found with id '{object_id}'.")


def bad_request(
    message: str, *, param: str | None = None, code: str | None = None
) -> EmulatorError:
    """400 ``invalid_request_error``."""
    return EmulatorError(400, message, param=param, code=code)


class GatewayError(EmulatorError):
    """An error from in front of the service, in Azure's shape: ``{"error": {code, message}}``.

    Azure OpenAI answers a missing or wrong ``api-key`` and a missing ``api-version`` itself,
    with the HTTP status as a string ``code`` and no ``type`` or ``param``.
    """

    def body(self) -> dict[str, Any]:
        return {"error": {"code": str(self.status), "message": self.message}}
