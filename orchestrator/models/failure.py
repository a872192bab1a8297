"""One table that classifies what a provider raised (as aider's exceptions.py does).

Provider SDKs are not imported here: errors are matched by class name along the MRO and by
an HTTP status code when the exception carries one. The classification decides what the
chain does next: `unavailable` is worth another model now and a retry later, `config` means
the route itself is wrong (a key, a model name), `invalid_output` is the model's fault.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from orchestrator.errors import (
    ProviderConfigError,
    ProviderError,
    ProviderUnavailable,
    StructuredOutputError,
)

# exception class name -> (error class, user message)
_BY_NAME: dict[str, tuple[type[ProviderError], str]] = {
    "APIConnectionError": (ProviderUnavailable, "cannot connect to the provider"),
    "APITimeoutError": (ProviderUnavailable, "the provider timed out"),
    "RateLimitError": (ProviderUnavailable, "rate limited by the provider (429)"),
    "InternalServerError": (ProviderUnavailable, "the provider failed (5xx)"),
    "ServiceUnavailableError": (ProviderUnavailable, "the provider is unavailable"),
    "AuthenticationError": (ProviderConfigError, "the API key was rejected (401)"),
    "PermissionDeniedError": (ProviderConfigError, "access denied by the provider (403)"),
    "NotFoundError": (ProviderConfigError, "the provider does not serve this model (404)"),
    "BadRequestError": (ProviderConfigError, "the provider rejected the request (400)"),
    "ConnectError": (ProviderUnavailable, "cannot connect to the provider"),
    "ConnectTimeout": (ProviderUnavailable, "connecting to the provider timed out"),
    "ReadTimeout": (ProviderUnavailable, "the provider did not answer in time"),
    "RemoteProtocolError": (ProviderUnavailable, "the provider closed the connection"),
    "TimeoutException": (ProviderUnavailable, "the provider timed out"),
    "TimeoutError": (ProviderUnavailable, "the call timed out"),
    "ModelWorkerLost": (ProviderUnavailable, "the embedded model's worker process stopped"),
    "ConnectionError": (ProviderUnavailable, "cannot connect to the provider"),
    "PermissionError": (ProviderConfigError, "missing credentials"),
    "FileNotFoundError": (ProviderConfigError, "model not found"),
    "JSONDecodeError": (ProviderUnavailable, "the provider sent a malformed response"),
    "LengthFinishReasonError": (StructuredOutputError, "the answer was cut off at limits.max_output_tokens"),
    "ContentFilterFinishReasonError": (StructuredOutputError, "the provider's content filter stopped the answer"),
}


def _status_class(status: int) -> tuple[type[ProviderError], str] | None:
    if status == 429:
        return ProviderUnavailable, "rate limited by the provider (429)"
    if status >= 500:
        return ProviderUnavailable, f"the provider failed ({status})"
    if status in (401, 403):
        return ProviderConfigError, f"the provider refused the credentials ({status})"
    if status == 404:
        return ProviderConfigError, "the provider does not serve this model (404)"
    if 400 <= status < 500:
        return ProviderConfigError, f"the provider rejected the request ({status})"
    return None


def retry_after(exc: BaseException) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date), when the SDK kept the
    response."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    value = headers.get("retry-after") if headers is not None else None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except (TypeError, ValueError):
        pass
    try:
        when = parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


# a response an SDK could not make sense of (an HTML error page, `{}`) surfaces as a plain
# TypeError or ValueError raised inside the SDK: that is the provider's malformed answer
_SDK_MODULES = ("openai", "langchain_openai", "ollama", "langchain_ollama", "httpx", "httpx2", "pydantic", "anthropic")
_MALFORMED = ("TypeError", "ValueError", "KeyError", "AttributeError", "ValidationError", "IndexError")


def _malformed_response(exc: BaseException) -> bool:
    if not any(cls.__name__ in _MALFORMED for cls in type(exc).__mro__):
        return False
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    module = str(frame.tb_frame.f_globals.get("__name__", "")) if frame is not None else ""
    return module.split(".")[0] in _SDK_MODULES


def classify(exc: BaseException, model: str) -> ProviderError:
    """Map any exception from a model call to a ProviderError subclass with a clear message."""
    if isinstance(exc, ProviderError):
        return exc
    cause = exc.__cause__ or exc.__context__
    while cause is not None:  # an SDK that wrapped what our own hooks raised (ResponseTooLarge)
        if isinstance(cause, ProviderError):
            return cause
        cause = cause.__cause__ or cause.__context__
    detail = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) and status > 0 else None
    found = _status_class(status) if status is not None else None
    if found is None and _malformed_response(exc):
        found = (ProviderUnavailable, "the provider sent a malformed response")
    if found is None:
        for cls in type(exc).__mro__:
            if cls.__name__ in _BY_NAME:
                found = _BY_NAME[cls.__name__]
                break
    if found is None:
        return ProviderError(f"{model}: {type(exc).__name__}: {detail}", model=model, status=status)
    error_class, message = found
    error = error_class(f"{model}: {message}: {detail}", model=model, status=status, retry_after=retry_after(exc))
    # an exception may say it does not mean the model is broken (a worker stopped for being slow)
    error.breaks = error.breaks and getattr(exc, "breaks", True) is not False
    return error
