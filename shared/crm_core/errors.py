"""Domain errors. Each knows its HTTP status; http.py renders them as problem+json (RFC 9457)."""

from __future__ import annotations

from typing import Any

from crm_core.problems import type_uri


class CrmError(Exception):
    status = 500
    title = "Internal error"
    type_slug = "internal"

    def __init__(self, detail: str, **extra: Any) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra

    @property
    def type_uri(self) -> str:
        return type_uri(self.type_slug)


class BadRequest(CrmError):
    status, title, type_slug = 400, "Bad request", "bad-request"


class Unauthorized(CrmError):
    status, title, type_slug = 401, "Unauthorized", "unauthorized"


class Forbidden(CrmError):
    status, title, type_slug = 403, "Forbidden", "forbidden"


class NotFound(CrmError):
    status, title, type_slug = 404, "Not found", "not-found"


class Conflict(CrmError):
    status, title, type_slug = 409, "Conflict", "conflict"


class PreconditionFailed(CrmError):
    status, title, type_slug = 412, "Precondition failed", "precondition-failed"


class ConcurrentChange(PreconditionFailed):
    """A versioned write lost to a concurrent one. `table.read_modify_write` retries it on
    fresh data; only if it escapes is it the client's 412."""


class PayloadTooLarge(CrmError):
    status, title, type_slug = 413, "Payload too large", "payload-too-large"


class UnsupportedMediaType(CrmError):
    status, title, type_slug = 415, "Unsupported media type", "unsupported-media-type"


class Unprocessable(CrmError):
    """A well-formed request whose content breaks a rule (422)."""

    status, title, type_slug = 422, "Validation failed", "validation"

    def __init__(self, detail: str, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail, **extra)
        self.errors = errors or []


class Moved(CrmError):
    """The object was merged into another one; reads are redirected (308)."""

    status, title, type_slug = 308, "Permanent redirect", "merged"

    def __init__(self, detail: str, location: str, **extra: Any) -> None:
        super().__init__(detail, **extra)
        self.location = location


class TooManyRequests(CrmError):
    status, title, type_slug = 429, "Too many requests", "throttled"
