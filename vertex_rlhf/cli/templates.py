"""``rlhf compile``, ``reference``, ``publish``, ``versions`` and ``diff``: the template's
commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from vertex_rlhf.cli import flags
from vertex_rlhf.config import values
from vertex_rlhf.usecases import templates
from vertex_rlhf.usecases.setting import params_folder
from vertex_rlhf.views.text import name, path


def register(sub: argparse._SubParsersAction) -> None:
    """Adds the template's subcommands."""
    p = sub.add_parser("compile", help="compile the pipeline into compiled/")
    flags.common(p)
    p.add_argument("--check", action="store_true", help="fail if compiled/ is stale")
    p.add_argument(
        "--amend",
        action="store_true",
        help="rewrite the current version with new content (only a version never published"
        " or released; otherwise bump PIPELINE_VERSION)",
    )
    p.set_defaults(func=run_compile)

    p = sub.add_parser("reference", help="write the parameter reference (docs/parameters.md)")
    flags.common(p)
    p.add_argument(
        "--output",
        type=values.output_path("--output"),
        default="docs/parameters.md",
        help="where to write it",
    )
    p.add_argument("--check", action="store_true", help="fail if it is stale")
    p.set_defaults(func=run_reference)

    p = sub.add_parser("publish", help="publish the compiled template to the registry")
    flags.common(p)
    flags.env_args(p)
    flags.api_timeout(p)
    p.set_defaults(func=run_publish)

    p = sub.add_parser("versions", help="list the published template versions and tags")
    flags.common(p)
    flags.env_args(p)
    flags.api_timeout(p)
    p.set_defaults(func=run_versions)

    p = sub.add_parser(
        "diff",
        help="what changed between two template versions (compiled, registry tag or digest)",
    )
    flags.common(p)
    for arg in ("A", "B"):
        p.add_argument(
            arg.lower(),
            metavar=arg,
            type=values.template_version(arg),
            help=f"{'first' if arg == 'A' else 'second'} version: {values.VERSION_FORMS}",
        )
    p.add_argument(
        "--env",
        type=values.environment_spec("--env"),
        help="environment whose vertex_ai.template_registry holds published versions"
        " (default: none, only compiled/)",
    )
    p.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="dotlist overrides (with --env)"
    )
    p.add_argument("--json", action="store_true", help="print the diff as JSON (rlhf-diff/1)")
    flags.api_timeout(p)
    p.set_defaults(func=run_diff)


def run_compile(args: argparse.Namespace) -> int:
    """Compiles the pipeline into compiled/, or with --check, fails if it is stale."""
    directory = flags.compiled_dir(args)
    if args.check:
        templates.check_compiled(directory)
        print(f"{path(directory)}/ is up to date with the sources")
        return 0
    flags.check_flags([values.output_problem(directory, "--compiled-dir", True)])
    for compiled in templates.compile_templates(directory, amend=args.amend):
        print(f"{path(compiled.path)} ({compiled.state}, sha256 {compiled.sha256[:12]})")
    return 0


def run_reference(args: argparse.Namespace) -> int:
    """Writes the parameter reference from the schema, or with --check, fails if stale."""
    from vertex_rlhf.views.reference import render

    output = Path(args.output)
    found = templates.reference(flags.compiled_dir(args), params_folder(args.params_dir))
    changed = templates.write_reference(render(found.rows, found.notes), output, args.check)
    if args.check:
        print(f"{path(output)} is up to date with the schema")
    else:
        print(f"{path(output)} ({'written' if changed else 'unchanged'})")
    return 0


def run_publish(args: argparse.Namespace) -> int:
    """Publishes the current compiled template to the registry in the parameters."""
    for done in templates.publish(flags.setting(args, ("vertex_ai",))):
        state = "published" if done.uploaded else "already published (same content)"
        print(f"{done.package} {done.version}: {state}\n  {name(done.uri, 1000)}")
    return 0


def run_versions(args: argparse.Namespace) -> int:
    """Lists the published versions and their tags."""
    from vertex_rlhf.views import listings

    found = templates.versions(flags.setting(args, ("vertex_ai",)))
    empty = f"(nothing published in {found.host}/{found.package})"
    print(listings.versions_table(found.versions, empty))
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Prints what changed between template versions A and B."""
    from vertex_rlhf.usecases import diff
    from vertex_rlhf.views import diff as view

    host = None
    if args.env is None:
        if args.overrides:
            flags.check_flags(
                [
                    f"KEY=VALUE overrides ({name(args.overrides[0])} ...) need --env ENV"
                    " (make: ENV=...)"
                ]
            )
        directory = flags.compiled_dir(args)
    else:
        setting = flags.setting(args, ("vertex_ai",))
        directory = setting.compiled
        host = setting.params.vertex_ai.template_registry or None
    report = diff.diff(args.a, args.b, directory, host)
    print(view.as_json(report) if args.json else view.render(report))
    return 0
