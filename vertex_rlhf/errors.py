"""Domain errors, one class per code, each with its own exit status.

The codes come from the original project description (AUTH_001 .. TRAINING_004);
DATA_005 covers datasets. The CLI prints ``error[CODE]: message`` and exits with
``exit_status``; no traceback unless ``LOG_LEVEL=DEBUG``.
"""

from __future__ import annotations


class RLHFError(Exception):
    """Base class: a problem the user can fix, reported without a traceback."""

    code = "RLHF_000"
    exit_status = 10
    hint = ""

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        if hint:
            self.hint = hint

    def render(self) -> str:
        """Returns the one-screen text the CLI prints."""
        text = f"error[{self.code}]: {self.message}"
        if self.hint:
            text += f"\n  fix: {self.hint}"
        return text


class AuthError(RLHFError):
    """AUTH_001: no or bad Google Cloud credentials."""

    code = "AUTH_001"
    exit_status = 11
    hint = "run `gcloud auth application-default login` or set GOOGLE_APPLICATION_CREDENTIALS"


class ConfigError(RLHFError):
    """CONFIG_002: a parameter file, override or flag is invalid.

    Holds every problem found, so one run shows them all.
    """

    code = "CONFIG_002"
    exit_status = 12

    def __init__(self, problems: list[str], source: str = "") -> None:
        self.problems = problems
        self.source = source
        where = f" in {source}" if source else ""
        head = f"{len(problems)} problem(s){where}" if len(problems) > 1 else problems[0]
        super().__init__(head)

    def __str__(self) -> str:
        """Every problem, so ``str(error)`` in Python says what ``render`` says."""
        if len(self.problems) == 1:
            return self.problems[0]
        return "\n".join([self.message, *(f"  - {p}" for p in self.problems)])

    def render(self) -> str:
        return f"error[{self.code}]: {self}"


class PipelineError(RLHFError):
    """PIPELINE_003: compiling, loading or publishing a template failed."""

    code = "PIPELINE_003"
    exit_status = 13


class TrainingError(RLHFError):
    """TRAINING_004: a run failed in training or ran out of resources."""

    code = "TRAINING_004"
    exit_status = 14


class DataError(RLHFError):
    """DATA_005: a dataset is missing, empty or has invalid rows."""

    code = "DATA_005"
    exit_status = 15


class NetworkError(RLHFError):
    """NETWORK_006: a Google API could not be reached or did not answer in time.

    Kept apart from AUTH_001: an unreachable token endpoint, a refused connection, a
    proxy, TLS or DNS failure says nothing about the credentials.
    """

    code = "NETWORK_006"
    exit_status = 16
    hint = (
        "check the network, the proxy (HTTPS_PROXY) and that the endpoint is reachable,"
        " then run the same command again"
    )
