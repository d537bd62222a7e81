"""Refusals a command can answer with: a contract error code, a message saying what to fix, details."""

from __future__ import annotations

from typing import Any


class CommandError(Exception):
    """A request that is refused. ``code`` is one of the contract's error codes.

    The message must say what to fix and must never carry personal data (no NIK, name, image).
    """

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.details = details or {}

    def as_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details:
            error["details"] = self.details
        return error


def invalid_payload(problems: list[dict[str, str]]) -> CommandError:
    """The ``invalid_payload`` refusal listing every ``{field, problem}``."""
    summary = "; ".join(f"{p['field']}: {p['problem']}" for p in problems[:5])
    more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
    return CommandError("invalid_payload", f"the request has {len(problems)} problem(s): {summary}{more}",
                        {"problems": problems})


class StorageError(Exception):
    """The database could not be opened, checked or written."""
