"""Which API endpoints a user may point us at: one rule for every override.

An override is either a Google API host (``https://NAME.googleapis.com``) or a local
stand-in on a loopback address over plain ``http://``. The host is parsed, never
prefix-matched: ``http://127.0.0.1.evil.example`` is not loopback. The same rule holds
for ``RLHF_*_ENDPOINT`` and ``STORAGE_EMULATOR_HOST``. ``vertex_ai.api_endpoint`` (a
regional or Private Service Connect host, usually written without a scheme) follows it too:
the caller's token is sent there, so it is a Google API host or a loopback stand-in.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from vertex_rlhf.errors import ConfigError

STORAGE_EMULATOR = "STORAGE_EMULATOR_HOST"
RULE = "https://NAME.googleapis.com or a loopback http://127.0.0.1:PORT (a local stand-in)"
_GOOGLE_HOST = re.compile(r"^(?:[a-z0-9](?:[-a-z0-9]*[a-z0-9])?\.)+googleapis\.com$")


def _parts(url: str) -> tuple[str, str, int | None] | None:
    """Scheme, host and port of a bare ``scheme://host[:port]``, or None if it is more."""
    try:
        split = urlsplit(url)
        port = split.port
    except ValueError:
        return None
    if split.path not in ("", "/") or split.query or split.fragment or split.username:
        return None
    if split.password or not split.hostname or "@" in split.netloc:
        return None
    return split.scheme, split.hostname, port


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback IP address, exactly; nothing that merely starts so."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def is_local_standin(url: str) -> bool:
    """True for ``http://`` on a loopback host (with an optional port)."""
    parts = _parts(url)
    return parts is not None and parts[0] == "http" and is_loopback_host(parts[1])


def endpoint_problem(variable: str, value: str) -> str | None:
    """Why ``value`` may not be used as an API endpoint, or None.

    Args:
        variable: the name the user set it under, for the message.
        value: the endpoint.
    """
    parts = _parts(value)
    if parts is not None:
        scheme, host, _ = parts
        if scheme == "https" and _GOOGLE_HOST.fullmatch(host):
            return None
        if scheme == "http" and is_loopback_host(host):
            return None
    return f"{variable}={value!r}: must be {RULE}"


def check_endpoint(variable: str, value: str) -> str:
    """Returns ``value`` if it passes ``endpoint_problem``.

    Raises:
        ConfigError: it does not.
    """
    problem = endpoint_problem(variable, value)
    if problem:
        raise ConfigError([problem])
    return value


def storage_emulator(environ: Mapping[str, str] = os.environ) -> str | None:
    """The checked ``STORAGE_EMULATOR_HOST``, or None when it is unset or empty.

    Raises:
        ConfigError: it is set to anything but a Google host or a loopback stand-in
            (google-cloud-storage would send it our requests, and tokens).
    """
    value = environ.get(STORAGE_EMULATOR, "")
    return check_endpoint(STORAGE_EMULATOR, value) if value else None


VERTEX_RULE = (
    "NAME.googleapis.com (a regional endpoint, or a Private Service Connect one:"
    " NAME.p.googleapis.com), with or without https://, or a loopback stand-in"
    " (http://127.0.0.1:PORT)"
)


def vertex_endpoint_problem(value: str) -> str | None:
    """Why ``value`` may not be ``vertex_ai.api_endpoint``, or None.

    The caller's credentials go to this host, so it is a Google API host (``https://`` or
    no scheme, as aiplatform takes it) or a loopback host (a local stand-in).
    """
    url = value if "://" in value else f"https://{value}"
    parts = _parts(url)
    if parts is not None:
        scheme, host, _ = parts
        if scheme == "https" and (_GOOGLE_HOST.fullmatch(host) or is_loopback_host(host)):
            return None
        if scheme == "http" and is_loopback_host(host):
            return None
    return (
        f"vertex_ai.api_endpoint={value!r}: must be {VERTEX_RULE}; your credentials are sent to it"
    )
