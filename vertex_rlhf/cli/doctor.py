"""``rlhf doctor``: can this environment run?"""

from __future__ import annotations

import argparse

from vertex_rlhf.cli import flags
from vertex_rlhf.usecases.doctor import doctor


def register(sub: argparse._SubParsersAction) -> None:
    """Adds ``doctor``."""
    p = sub.add_parser("doctor", help="check that ENV can run: credentials, APIs, bucket, ...")
    flags.common(p)
    flags.env_args(p)
    flags.api_timeout(p)
    p.set_defaults(func=run_doctor)


def run_doctor(args: argparse.Namespace) -> int:
    """Checks credentials, project, APIs, bucket, service account, registry, quota, SDKs."""
    from vertex_rlhf.cloud.health import exit_status
    from vertex_rlhf.views.health import render_health

    results = doctor(flags.setting(args))
    print(render_health(results))
    return exit_status(results)
