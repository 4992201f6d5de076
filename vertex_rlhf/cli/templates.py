"""``rlhf compile``, ``reference``, ``publish`` and ``versions``: the template's commands."""

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
