"""The use case that checks an environment can run: credentials, APIs, bucket, quota."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vertex_rlhf.usecases.setting import Setting

if TYPE_CHECKING:
    from vertex_rlhf.cloud.health import CheckResult


def doctor(setting: Setting) -> list[CheckResult]:
    """Runs every health check against the endpoints of this machine's environment."""
    from vertex_rlhf.cloud import health

    return health.run_checks(setting.params, setting.compiled, health.Endpoints.from_env())
