"""Errors that reach the client as JSON (docs/design.md §2.3): each knows its HTTP status
and err_no."""


class ServingError(Exception):
    """A failure the client is told about: ``{"result": msg, "err_no": n, "err_msg": msg}``."""

    status = 500
    err_no = 500
    headers: dict = {}  # added to the answer's headers (e.g. WWW-Authenticate on a 401)

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message
        self.fields: dict = {}  # added to the error body (e.g. the request's logId on /ocr)


class BadRequest(ServingError):
    """Malformed JSON, missing feed/fetch, bad base64, not an image, unknown fetch name."""

    status = 400
    err_no = 400


class Unauthorized(ServingError):
    """No API key, or a wrong one (pdserving.auth; the message never holds what was sent)."""

    status = 401
    err_no = 401
    headers = {"WWW-Authenticate": "Bearer"}


class Unprocessable(ServingError):
    """A well-formed request the service cannot do: PaddleX's status for any bad input."""

    status = 422
    err_no = 422


class PayloadTooLarge(ServingError):
    """A body or an image over the configured limits."""

    status = 413
    err_no = 413


class Unavailable(ServingError):
    """Overloaded, or a model server this service needs is down: try again later."""

    status = 503
    err_no = 503

    def __init__(self, message: str, retry_after: float = 1.0):
        super().__init__(message)
        self.retry_after = retry_after
