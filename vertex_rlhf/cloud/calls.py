"""The one door for Google API calls: bounded, retried where promised, answers checked.

Every call to Vertex AI, the template registry, Cloud Storage and the doctor's APIs goes
through ``call``: transient failures (429, 5xx, timeouts, dropped or refused connections,
an unreachable token endpoint) are retried with exponential backoff, every wait is
bounded by the command's budget (``within``, set from ``--timeout``), and whatever a
client library raises becomes a coded error (``coded``) that tells a network problem
(NETWORK_006) from refused credentials (AUTH_001). Answers are checked here too: a job
about another job than the one asked for (``job_answer``) and lists whose pages repeat
or never end (``bounded_pages``) are refused.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from google.api_core.retry import Retry

from vertex_rlhf.errors import (
    AuthError,
    ConfigError,
    NetworkError,
    PipelineError,
    RLHFError,
)

T = TypeVar("T")
log = logging.getLogger(__name__)

# How long a host that cannot be reached at all (refused, proxy, DNS, TLS, token
# endpoint) is retried: a network that is down stays down for longer than that.
UNREACHABLE_SECONDS = 20.0
MAX_PAGES = 100
MALFORMED_HINT = (
    "run the same command again; if it persists, the endpoint (vertex_ai.api_endpoint,"
    " a proxy) is not answering as Google's API does: LOG_LEVEL=DEBUG shows the details"
)

_clock: Callable[[], float] = time.monotonic
_sleep: Callable[[float], None] = time.sleep
_deadline: float | None = None


@contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Bounds every call (and retry) made inside by ``seconds`` in all; None: no bound."""
    global _deadline
    saved = _deadline
    if seconds is not None:
        mine = _clock() + seconds
        _deadline = mine if saved is None else min(saved, mine)
    try:
        yield
    finally:
        _deadline = saved


def remaining(default: float) -> float:
    """Seconds one wait may take: ``default``, or less when the budget ends sooner."""
    if _deadline is None:
        return default
    return max(0.05, min(default, _deadline - _clock()))


def unreachable(error: BaseException) -> bool:
    """A failure to reach the host at all (as opposed to an answer saying "later")."""
    import requests
    from google.auth.exceptions import TransportError

    if isinstance(error, (requests.exceptions.Timeout, TimeoutError)):
        return False
    return isinstance(error, (TransportError, requests.exceptions.ConnectionError, ConnectionError))


def is_transient(error: BaseException) -> bool:
    """Whether a failure is worth retrying: 429, 5xx, timeouts, connections, token transport."""
    import requests
    from google.api_core import exceptions
    from google.auth.exceptions import TransportError

    transient = (
        exceptions.TooManyRequests,
        exceptions.InternalServerError,
        exceptions.BadGateway,
        exceptions.ServiceUnavailable,
        exceptions.GatewayTimeout,
        exceptions.DeadlineExceeded,
        exceptions.RetryError,
        TransportError,
        requests.exceptions.ConnectionError,
        requests.exceptions.Timeout,
        ConnectionError,
        TimeoutError,
    )
    if isinstance(error, requests.HTTPError):
        status = http_status(error)
        return status == 429 or (status or 0) >= 500
    return isinstance(error, transient)


class RetryPredicate:
    """Which failures to retry: transient ones, but a host that stays unreachable for
    ``UNREACHABLE_SECONDS`` is given up on (for ``google.api_core.retry.Retry`` too)."""

    def __init__(self) -> None:
        self.unreachable_since: float | None = None

    def __call__(self, error: BaseException) -> bool:
        error = _cause(error)
        if not is_transient(error):
            return False
        if not unreachable(error):
            self.unreachable_since = None
            return True
        now = _clock()
        if self.unreachable_since is None:
            self.unreachable_since = now
        return now - self.unreachable_since < UNREACHABLE_SECONDS


def _cause(error: BaseException) -> BaseException:
    """The failure under a RetryError (api_core's "retry ran out")."""
    from google.api_core import exceptions

    seen = 0
    while isinstance(error, exceptions.RetryError) and error.cause is not None and seen < 5:
        error, seen = error.cause, seen + 1
    return error


def _short(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text[:300]}" if text else type(error).__name__


def _network(what: str, error: BaseException) -> NetworkError:
    import requests
    from google.auth.exceptions import TransportError

    if isinstance(error, TransportError):
        why = "the token endpoint could not be reached (the credentials were not refused)"
    elif isinstance(error, requests.exceptions.ProxyError):
        why = "the proxy refused or dropped the connection"
    elif isinstance(error, requests.exceptions.SSLError):
        why = "the TLS handshake failed"
    elif isinstance(error, (requests.exceptions.Timeout, TimeoutError)):
        why = "no answer in time"
    elif "resolve" in str(error).lower() or "name or service" in str(error).lower():
        why = "the host name could not be resolved (DNS)"
    else:
        why = "the connection failed"
    return NetworkError(f"{what}: {why} ({_short(error)})")


def http_status(error: BaseException) -> int | None:
    """The HTTP status of a ``requests`` error that carries a response."""
    status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _http(what: str, error: BaseException) -> RLHFError:
    status = http_status(error)
    if status in (401, 403):
        return AuthError(f"{what}: the credentials were refused (HTTP {status})")
    if status == 404:
        return ConfigError([f"{what}: not found (HTTP 404)"])
    if status == 429 or (status or 0) >= 500:
        return NetworkError(
            f"{what}: the service answered HTTP {status}",
            hint="the service is unavailable or overloaded: run the same command again later",
        )
    return PipelineError(f"{what}: the service answered HTTP {status}", hint=MALFORMED_HINT)


def malformed(what: str, detail: str) -> PipelineError:
    """The coded error for an answer that is not what the API promises."""
    return PipelineError(f"{what}: the answer is malformed ({detail})", hint=MALFORMED_HINT)


def coded(error: BaseException, what: str) -> RLHFError:
    """Maps whatever a client library raised to a coded error naming the call.

    Args:
        error: the exception.
        what: the call, e.g. ``read projects/p/locations/l/pipelineJobs/j``.
    """
    import requests
    from google.api_core import exceptions
    from google.auth.exceptions import DefaultCredentialsError, RefreshError, TransportError
    from google.protobuf.json_format import Error as ProtoJsonError

    if isinstance(error, RLHFError):
        return error
    error = _cause(error)
    if isinstance(error, requests.HTTPError):
        return _http(what, error)
    if isinstance(error, (DefaultCredentialsError, RefreshError, exceptions.Unauthorized)):
        return AuthError(f"{what}: the credentials were refused ({_short(error)})")
    if isinstance(error, (exceptions.PermissionDenied, exceptions.Forbidden)):
        return AuthError(
            f"{what}: permission denied ({error.message})",
            hint="grant the caller roles/aiplatform.user (and act-as on the service account)",
        )
    if isinstance(error, exceptions.NotFound):
        return ConfigError([f"{what}: not found ({error.message})"])
    if isinstance(error, exceptions.BadRequest):
        return ConfigError([f"{what}: the API rejected the request ({error.message})"])
    if isinstance(error, (ProtoJsonError, json.JSONDecodeError, UnicodeDecodeError)):
        return malformed(what, _short(error))
    if isinstance(error, (TypeError, KeyError, AttributeError, ValueError)):
        return malformed(what, _short(error))
    if isinstance(error, (TransportError, requests.exceptions.RequestException, OSError)):
        return _network(what, error)
    if isinstance(error, exceptions.GoogleAPICallError):
        status = error.code if isinstance(error.code, int) else "?"
        transient = is_transient(error)
        return (NetworkError if transient else PipelineError)(
            f"{what}: the API answered HTTP {status} ({error.message})",
            hint="the service is unavailable or overloaded: run the same command again later"
            if transient
            else MALFORMED_HINT,
        )
    if isinstance(error, exceptions.GoogleAPIError):
        return NetworkError(f"{what}: {_short(error)}")
    return PipelineError(
        f"{what}: failed unexpectedly ({_short(error)})",
        hint="run the same command with LOG_LEVEL=DEBUG for the details",
    )


def call(
    what: str,
    function: Callable[..., T],
    *args: Any,
    budget: float = 120.0,
    retried: bool = True,
    passthrough: tuple[type[BaseException], ...] = (),
    **kwargs: Any,
) -> T:
    """Calls a Google API through the door.

    Args:
        what: the call, for messages.
        function: the client method.
        budget: seconds all attempts may take (less if the command's budget ends first).
        retried: retry transient failures (False for calls that are not safe to repeat).
        passthrough: failures raised as they came (after retries), for a caller that
            reads their HTTP status itself.
        *args, **kwargs: passed to ``function``.

    Raises:
        RLHFError: the coded error of the last failure (NETWORK_006, AUTH_001, ...).
    """
    from google.api_core.retry import exponential_sleep_generator

    deadline = _clock() + remaining(budget)
    delays = exponential_sleep_generator(1.0, 10.0, 2.0)
    worth_retrying = RetryPredicate()
    attempts = 0
    while True:
        attempts += 1
        try:
            return function(*args, **kwargs)
        except RLHFError:
            raise
        except Exception as error:
            if not retried or not is_transient(_cause(error)):
                log.debug("%s failed", what, exc_info=True)
                if isinstance(error, passthrough):
                    raise
                raise coded(error, what) from None
            delay = next(delays)
            if _clock() + delay > deadline or not worth_retrying(error):
                log.debug("%s failed %d time(s), giving up", what, attempts, exc_info=True)
                if isinstance(error, passthrough):
                    raise
                found = coded(error, what)
                found.message = f"{found.message}; {attempts} attempt(s)"
                found.args = (found.message,)
                raise found from None
            log.debug("%s failed (%s); retrying in %.1fs", what, _short(error), delay)
            _sleep(delay)


def in_time(function: Callable[..., T], *args: Any, seconds: float, **kwargs: Any) -> T:
    """Runs a call that sets no timeout of its own (kfp's registry client) in a thread,
    waiting at most ``seconds`` (less when the budget ends sooner).

    Raises:
        TimeoutError: no answer in time (the thread is left to the process's end).
    """
    import threading

    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = function(*args, **kwargs)
        except BaseException as error:  # handed to the caller's thread
            box["error"] = error

    worker = threading.Thread(target=run, daemon=True, name="rlhf-api-call")
    worker.start()
    wait = remaining(seconds)
    worker.join(wait)
    if worker.is_alive():
        raise TimeoutError(f"no answer in {wait:.0f}s")
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value


def job_answer(resource: Any, asked: str, what: str) -> dict[str, Any]:
    """A PipelineJob answer as a dict (``PipelineJob.to_dict``), if it is the job asked for.

    Raises:
        PipelineError: the answer is about another job, or cannot be read.
    """
    import warnings

    from google.cloud.aiplatform_v1 import PipelineJob

    try:
        with warnings.catch_warnings():
            # proto-plus warns of enum values it does not know; the status shows them.
            warnings.simplefilter("ignore", UserWarning)
            job = dict(PipelineJob.to_dict(resource, use_integers_for_enums=False))
    except Exception as error:
        raise coded(error, what) from None
    name = job.get("name")
    if name != asked:
        raise PipelineError(
            f"{what}: the answer is about another job ({str(name)[:200]!r}), not {asked}; refused",
            hint=MALFORMED_HINT,
        )
    return job


def schedule_answer(resource: Any, asked: str | None, what: str) -> dict[str, Any]:
    """A Schedule answer as a dict (``Schedule.to_dict``), if it is the schedule asked for.

    Args:
        resource: the answer (a GAPIC ``Schedule``).
        asked: the schedule's resource name, or None (a create: any name).
        what: the call, for messages.

    Raises:
        PipelineError: the answer is about another schedule, or cannot be read.
    """
    import warnings

    from google.cloud.aiplatform_v1 import Schedule

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            schedule = dict(Schedule.to_dict(resource, use_integers_for_enums=False))
    except Exception as error:
        raise coded(error, what) from None
    name = schedule.get("name")
    if not isinstance(name, str) or not name or (asked is not None and name != asked):
        raise PipelineError(
            f"{what}: the answer is about another schedule ({str(name)[:200]!r}),"
            f" not {asked or 'the one created'}; refused",
            hint=MALFORMED_HINT,
        )
    return schedule


def bounded_pages(
    what: str,
    pages: Iterable[Any],
    items: Callable[[Any], Iterable[T]],
    limit: int,
    token: Callable[[Any], str] | None = None,
    key: Callable[[T], Any] | None = None,
) -> list[T]:
    """Reads the items of a paged list, at most ``limit``, refusing endless pages.

    Args:
        what: the call, for messages.
        pages: the pages (a GAPIC pager's ``pages``); each has ``next_page_token``.
        items: the items of one page.
        limit: how many items are wanted.
        token: the next page token after a page (default its ``next_page_token``).
        key: what makes an item unique: an item seen before is dropped (a list that
            repeats itself never fills ``limit``).

    Raises:
        PipelineError: a page token repeats, or more than ``MAX_PAGES`` pages.
        RLHFError: a page could not be read (as ``coded``).
    """
    found: list[T] = []
    keys: set[Any] = set()
    tokens: set[str] = set()
    iterator = iter(pages)
    for number in range(1, MAX_PAGES + 2):
        try:
            page = call(what, next, iterator, None, budget=120.0, retried=False)
        except RLHFError:
            raise
        if page is None:
            return found
        if number > MAX_PAGES:
            raise malformed(what, f"more than {MAX_PAGES} pages")
        for item in items(page):
            if key is not None:
                unique = key(item)
                if unique in keys:
                    continue
                keys.add(unique)
            found.append(item)
        following = str((token(page) if token else page.next_page_token) or "")
        if len(found) >= limit or not following:
            return found[:limit]
        if following in tokens:
            raise malformed(what, f"the page token {following[:40]!r} repeats")
        tokens.add(following)
    raise malformed(what, f"more than {MAX_PAGES} pages")


def listing(
    what: str,
    method: Callable[..., Any],
    request: dict[str, Any],
    items: Callable[[Any], Iterable[T]],
    limit: int,
    key: Callable[[T], Any] | None = None,
) -> list[T]:
    """One GAPIC list call through the door: the client retries reads itself (not twice),
    the command's ``--timeout`` bounds it, and its pages are bounded (``bounded_pages``).

    Raises:
        RLHFError: as ``call`` and ``bounded_pages`` do.
    """
    pager = call(
        what,
        method,
        request=request,
        retry=read_retry(),
        timeout=remaining(60.0),
        retried=False,
    )
    return bounded_pages(what, pager.pages, items, limit, key=key)


def transient_retry(initial: float, maximum: float, timeout: float) -> Retry:
    """A ``google.api_core`` Retry of transient errors: exponential backoff with jitter.

    Args:
        initial: the first delay's upper bound, in seconds (doubling each time).
        maximum: the largest delay.
        timeout: no new attempt after this many seconds (less when the command's
            budget, ``calls.within``, ends sooner).
    """
    from google.api_core.retry import Retry

    return Retry(
        predicate=RetryPredicate(),
        initial=initial,
        maximum=maximum,
        multiplier=2.0,
        timeout=remaining(timeout),
    )


def read_retry() -> Retry:
    """For reads (get, list) and cancel, which are safe to repeat."""
    return transient_retry(1.0, 10.0, 120.0)


def create_retry() -> Retry:
    """For create attempts (each one looks the job up first: never two jobs)."""
    return transient_retry(2.0, 30.0, 300.0)
