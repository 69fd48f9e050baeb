"""One error hierarchy, named as Backstage names them, so API clients see the same bodies.

Every error carries a message meant for a person: it names the file, line or field and the fix.
The HTTP layer maps ``status_code`` to a response; nothing else looks at it.
"""

from __future__ import annotations


class GreenroomError(Exception):
    """Base of every error we raise on purpose."""

    name = "Error"
    status_code = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InputError(GreenroomError):
    name = "InputError"
    status_code = 400


class AuthenticationError(GreenroomError):
    name = "AuthenticationError"
    status_code = 401


class NotAllowedError(GreenroomError):
    name = "NotAllowedError"
    status_code = 403


class NotFoundError(GreenroomError):
    name = "NotFoundError"
    status_code = 404


class ConflictError(GreenroomError):
    name = "ConflictError"
    status_code = 409


class NotModifiedError(GreenroomError):
    name = "NotModifiedError"
    status_code = 304


class ConfigError(GreenroomError):
    """A configuration file or value is wrong; the process must not start serving."""

    name = "ConfigError"
    status_code = 500
