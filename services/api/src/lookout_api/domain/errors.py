"""Errors the domain raises; the HTTP layer maps each to one RFC 7807 status."""

from __future__ import annotations


class DomainError(Exception):
    status = 400
    title = "Bad request"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class InvalidInput(DomainError):
    status = 422
    title = "Invalid request"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition failed"


class TooManyRequests(DomainError):
    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class Unavailable(DomainError):
    status = 503
    title = "Service unavailable"


class ItemErrors(InvalidInput):
    """Several inputs of one request are invalid (a bulk request): one entry per problem."""

    def __init__(self, errors: list[dict[str, object]]) -> None:
        first = errors[0]
        super().__init__(f"{len(errors)} invalid item(s); first: {first['msg']}")
        self.errors = errors
