"""The ``rlhf`` command line: thin wrappers over the library, one subcommand each.

Heavy libraries (kfp, GCPC, aiplatform) are imported only by the subcommands that
use them, so checking parameters and steps stays fast. Every value a flag takes passes
a ``vertex_rlhf.config.values`` parser (its argparse ``type=``) before a command runs.
"""

from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vertex_rlhf.config import values
from vertex_rlhf.data.rules import KINDS
from vertex_rlhf.errors import ConfigError, DataError, PipelineError, RLHFError
from vertex_rlhf.views.logs import EscapingFormatter
from vertex_rlhf.views.text import name as outside_name
from vertex_rlhf.views.text import outside

if TYPE_CHECKING:
    from vertex_rlhf.cloud.vertex import VertexTarget
    from vertex_rlhf.config.environment import Environment
    from vertex_rlhf.config.params import RLHFParams

log = logging.getLogger("rlhf")
# The most characters of one error message printed (a server's error can be megabytes).
ERROR_LIMIT = 10_000


def _shown(path: object) -> str:
    """A path the user gave (or one made from it), as a success line prints it: one line,
    control characters escaped, like every other text from outside."""
    return outside_name(path, 1000)


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--params-dir",
        type=values.existing_directory("--params-dir"),
        help="where base.yaml and <env>.yaml are (default: the project's params/, found"
        " from the current directory upwards, then beside the installed package)",
    )
    parser.add_argument(
        "--compiled-dir", help="where templates are compiled (default: the project's compiled/)"
    )


ENV_HELP = (
    "environment: a name (params/<name>.yaml over params/base.yaml; 1-30 of a-z, 0-9, -)"
    " or the path of a parameter file (params/dev.yaml, /abs/team.yaml)"
)


def _env_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", type=values.environment_spec("environment"), help=ENV_HELP)
    parser.add_argument(
        "overrides", nargs="*", metavar="KEY=VALUE", help="OmegaConf dotlist overrides"
    )


def compiled_dir(args: argparse.Namespace) -> Path:
    """``--compiled-dir``, or the project's ``compiled/`` wherever the command runs."""
    from vertex_rlhf.config.environment import find_project_root

    return Path(args.compiled_dir) if args.compiled_dir else find_project_root() / "compiled"


def params_dir(args: argparse.Namespace) -> Path:
    """``--params-dir``, or the project's ``params/`` wherever the command runs."""
    from vertex_rlhf.config.environment import find_project_root

    return Path(args.params_dir) if args.params_dir else find_project_root() / "params"


def environment(args: argparse.Namespace) -> Environment:
    """Turns a command's environment argument (a name or a file's path) into its files.

    Every command that takes an environment goes through here, so each accepts both forms.
    """
    from vertex_rlhf.config.environment import resolve_environment

    return resolve_environment(args.env, args.params_dir)


def _path_problem(path: Path, flag: str, directory: bool) -> str | None:
    """Why ``path`` cannot be written as a file (or created as a directory), or None."""
    return values.output_problem(path, flag, directory)


def _check_flags(problems: list[str | None]) -> None:
    found = [p for p in problems if p]
    if found:
        raise ConfigError(found)


def cmd_compile(args: argparse.Namespace) -> int:
    """Compiles the pipeline into compiled/, or with --check, fails if it is stale."""
    from vertex_rlhf.template import compiler

    directory = compiled_dir(args)
    if args.check:
        problems = compiler.stale_problems(directory)
        if problems:
            raise PipelineError(
                "compiled/ is stale: " + "; ".join(problems),
                hint="as each problem says, then commit compiled/",
            )
        print(f"{_shown(directory)}/ is up to date with the sources")
        return 0
    _check_flags([_path_problem(directory, "--compiled-dir", directory=True)])
    if args.amend:
        _refuse_amending_main(directory)
    fingerprint = compiler.source_fingerprint()
    unchanged = None if args.amend else compiler.unchanged_since_stamp(directory, fingerprint)
    if unchanged:  # the same sources and pins as the last compile: its answer holds
        print(f"{_shown(directory / unchanged[0])} (unchanged, sha256 {unchanged[1][:12]})")
        return 0
    template, changed = compiler.compile_to(directory, amend=args.amend)
    compiler.write_stamp(directory, template, fingerprint)
    state = "written" if changed else "unchanged"
    for variant in template.files:
        print(f"{_shown(directory / variant.file_name)} ({state}, sha256 {variant.sha256[:12]})")
    return 0


MAIN_BRANCHES = ("main", "master", "origin/main", "origin/master")


def _refuse_amending_main(directory: Path) -> None:
    """``compile --amend`` rewrites a version only while it is not on the main branch.

    Raises:
        PipelineError: the current version's template is committed on the main branch
            (others may have pulled, published or released it).
    """
    import subprocess

    from pipelines.rlhf_tuning import PIPELINE_VERSION
    from vertex_rlhf.template import compiler

    name = compiler.read_manifest(directory).get("pipeline") or "rlhf-tuning"
    template = directory.resolve() / f"{name}-{PIPELINE_VERSION}.yaml"

    def git(*argv: str) -> bool:
        try:
            done = subprocess.run(
                ["git", *argv], cwd=template.parent, capture_output=True, timeout=30
            )
        except (OSError, subprocess.SubprocessError):
            return False
        return done.returncode == 0

    for branch in MAIN_BRANCHES:
        if git("rev-parse", "--verify", "--quiet", f"{branch}^{{commit}}") and git(
            "cat-file", "-e", f"{branch}:./{template.name}"
        ):
            raise PipelineError(
                f"version {PIPELINE_VERSION} is committed on the {branch} branch"
                f" ({directory / template.name}): --amend rewrites only a version that is"
                " not yet on the main branch",
                hint=compiler.BUMP_HINT,
            )


def cmd_check(args: argparse.Namespace) -> int:
    """Checks an environment's parameters against the schema and the compiled signature."""
    import yaml

    from vertex_rlhf.config.params import load_params
    from vertex_rlhf.data.report import layout_problems
    from vertex_rlhf.template import signature

    env = environment(args)
    params = load_params(env, args.overrides)
    values = signature.pipeline_parameter_values(params)
    notify = bool(params.vertex_ai.notify_emails)
    template = signature.current_template_path(compiled_dir(args), notify)
    signature.check_against_signature(values, signature.template_inputs(template), template.name)
    problems = layout_problems(params)
    if problems:
        raise DataError(
            "\n".join(problems),
            hint="give every dataset the layout of the model (`"
            + " ".join(
                ["rlhf validate-data", shlex.quote(args.env), *map(shlex.quote, args.overrides)]
            )
            + "` lists every row)",
        )
    if args.print:
        print(
            yaml.safe_dump(
                {"template": str(template), "parameter_values": values}, sort_keys=False
            ),
            end="",
        )
    _warn(params, *_dataset_rows(params, required=False))
    print(f"{env.label}: valid for {template.name}", file=sys.stderr)
    return 0


def cmd_steps(args: argparse.Namespace) -> int:
    """Prints the training steps a run of this environment will get."""
    from vertex_rlhf.config.params import load_params
    from vertex_rlhf.steps import calculate_training_steps

    params = load_params(environment(args), args.overrides, sections=("dataset", "training"))
    t = params.training
    preference_rows, prompt_rows = _dataset_rows(params, required=True)
    assert preference_rows is not None and prompt_rows is not None
    steps, _ = calculate_training_steps(
        preference_rows,
        prompt_rows,
        t.reward_model_epochs,
        t.reinforcement_learning_epochs,
        t.reward_model_train_steps or 0,
        t.reinforcement_learning_train_steps or 0,
    )
    print(steps_line(steps, t.reward_model_train_steps, t.reinforcement_learning_train_steps))
    _warn(params, preference_rows, prompt_rows)
    return 0


def steps_line(
    steps: object, reward_model_train_steps: int | None, rl_train_steps: int | None
) -> str:
    """The steps line: the original description's "Optimal" when both are computed.

    Explicit step counts are not optimal for anything: the line says they are explicit.
    """
    explicit = [
        key
        for key, value in (
            ("training.reward_model_train_steps", reward_model_train_steps),
            ("training.reinforcement_learning_train_steps", rl_train_steps),
        )
        if value
    ]
    if not explicit:
        return f"Optimal training steps: {steps}"
    if len(explicit) == 2:
        return f"Training steps (explicit in the parameters, not computed): {steps}"
    return f"Training steps ({explicit[0]} explicit, the other computed): {steps}"


def _warn(params: RLHFParams, preference_rows: int | None, prompt_rows: int | None) -> None:
    """Prints the guidance warnings: the same for steps, check and submit."""
    from vertex_rlhf.config.guidance import run_warnings

    for warning in run_warnings(params, preference_rows, prompt_rows):
        print(f"warning: {warning}", file=sys.stderr)


def _dataset_rows(params: RLHFParams, required: bool) -> tuple[int | None, int | None]:
    """Row counts of the preference and prompt datasets: counted when local, else declared."""
    d, model = params.dataset, params.training.large_model_reference
    return (
        _row_count(
            d.preference_dataset,
            "preference",
            d.preference_size,
            "dataset.preference_size",
            required,
            model,
        ),
        _row_count(
            d.prompt_dataset, "prompt", d.prompt_size, "dataset.prompt_size", required, model
        ),
    )


def _row_count(
    path: str, kind: str, declared: int | None, key: str, required: bool = True, model: str = ""
) -> int | None:
    """Counts a local dataset's rows (validating them), or uses the declared size."""
    if not path.startswith("gs://"):
        from vertex_rlhf.data.report import model_layout
        from vertex_rlhf.data.rules import report_summary, validate_dataset_files

        report = validate_dataset_files(path, kind, 5, model, model_layout(model))
        if report["errors"]:
            raise DataError(
                report_summary(report), hint="correct or remove the rows above, then run again"
            )
        rows: int = report["rows"]
        print(f"{kind}: {rows} rows counted in {_shown(path)}", file=sys.stderr)
        return rows
    if declared is None:
        if not required:
            return None
        raise ConfigError(
            [
                f"{key}: not set; steps for gs:// data are computed offline from the declared"
                f" row count (the pipeline counts the real rows at run time). Set {key}=ROWS"
            ]
        )
    print(f"{kind}: {declared} rows declared by {key}", file=sys.stderr)
    return declared


def _vertex_params(args: argparse.Namespace) -> RLHFParams:
    from vertex_rlhf.config.params import load_params

    return load_params(environment(args), args.overrides, sections=("vertex_ai",))


def _resume_hint(job: str, env: str, overrides: Sequence[str] = ()) -> str:
    """The make command that follows ``job`` again, with the same environment and overrides."""
    command = f"make monitor JOB={shlex.quote(job.rsplit('/', 1)[-1])} ENV={shlex.quote(env)}"
    if overrides:
        command += " OVERRIDES=" + shlex.quote(" ".join(shlex.quote(o) for o in overrides))
    return command


def _metrics_log(job: str, args: argparse.Namespace) -> Path:
    return Path(args.metrics_log or f"runs/{job.rsplit('/', 1)[-1]}.jsonl")


def _check_watch_flags(args: argparse.Namespace, job: str | None) -> None:
    """Refuses bad --poll-interval, --timeout and --metrics-log before anything is sent."""
    # Before a submit the job id is not known yet: check where its default log would go.
    log = _metrics_log(job or "JOB_ID", args)
    _check_flags([_path_problem(log, "--metrics-log", directory=False)])


def _follow(target: VertexTarget, job: str, args: argparse.Namespace) -> int:
    """Watches a job to its end and reports; Ctrl-C stops watching, never cancels.

    On a terminal a live view replaces the progress lines; the report follows either way.
    New training points in the job's event files are appended to the metrics log as they
    appear.
    """
    from vertex_rlhf.cloud import metrics, monitor
    from vertex_rlhf.views import live, run_report

    log = _metrics_log(job, args)
    _check_watch_flags(args, job)
    print(f"Following {job}\n  console: {target.console_url(target.job_name(job))}")
    follower: metrics.MetricsFollower | None = None
    try:
        with live.monitor_display(job, log) as display:
            # The follower writes through the display, not past it (a live view redraws).
            follower = metrics.MetricsFollower(log, out=display.out)
            watcher = monitor.PipelineMonitor(
                target,
                metrics_log=log,
                min_interval=args.poll_interval,
                max_interval=max(args.poll_interval, 60.0),
                out=display.out,
                on_poll=follower,
            )
            status = watcher.monitor_job_with_updates(
                job, timeout=args.timeout, callback=display.callback
            )
    except KeyboardInterrupt:
        print(
            "\nStopped watching; the job keeps running."
            f" Resume with: {_resume_hint(job, args.env, args.overrides)}",
            file=sys.stderr,
        )
        return 130
    finally:
        if follower is not None:
            follower.files.close()
    print(run_report.report(status))
    print(f"  metrics log: {_shown(log)}")
    if status.get("timed_out"):
        print(
            f"Stopped watching after {args.timeout:.0f}s; resume with: "
            f"{_resume_hint(job, args.env, args.overrides)}",
            file=sys.stderr,
        )
        return 0
    error = monitor.final_error(status)
    if error:
        raise error
    return 0


def cmd_submit(args: argparse.Namespace) -> int:
    """Builds the PipelineJob from params/ENV.yaml and submits it (or prints it)."""
    import tempfile

    import yaml

    from vertex_rlhf.cloud import submission
    from vertex_rlhf.config import names
    from vertex_rlhf.config.params import load_params

    if args.wait:
        _check_watch_flags(args, None)
    overrides = list(args.overrides)
    if args.version is not None:
        problem = names.tag_problem(args.version, digest_ok=True)
        _check_flags([f"--version: {problem}" if problem else None])
        overrides.append(f"vertex_ai.template_version={args.version}")
    env = environment(args)
    params = load_params(env, overrides)
    v = params.vertex_ai
    compiled = compiled_dir(args)
    if v.template_version and not v.template_registry:
        _check_compiled_version(v.template_version, compiled)
    commit = submission.git_commit(env.root)
    with tempfile.TemporaryDirectory(prefix="rlhf-template-") as downloads:
        if v.template_registry and v.template_version:
            package = submission.local_template(compiled).name
            ref = submission.variant_tag(v.template_version, bool(v.notify_emails))
            if args.dry_run:
                template = submission.TemplateRef(None, package, ref, "")
            else:
                template = submission.registry_template(
                    v.template_registry,
                    package,
                    v.template_version,
                    Path(downloads),
                    notify=bool(v.notify_emails),
                )
        else:
            template = submission.local_template(
                compiled, v.template_version, notify=bool(v.notify_emails)
            )
            if v.template_version:
                print(
                    f"note: vertex_ai.template_registry is not set, so version"
                    f" {v.template_version} is the one compiled in {compiled}/"
                    f" ({template.path}), not a published one",
                    file=sys.stderr,
                )
        request = submission.build_request(params, env.name, template, commit, args.job_id)
        _warn(params, params.dataset.preference_size, params.dataset.prompt_size)
        if args.dry_run:
            described = submission.describe(request)
            described["plan"] = _run_plan(params, compiled).as_dict()
            print(yaml.safe_dump(described, sort_keys=False), end="")
            print("dry run: nothing was sent", file=sys.stderr)
            return 0
        if not args.yes and sys.stdin.isatty() and not _confirmed(params, compiled, request):
            print("not submitted: nothing was sent", file=sys.stderr)
            return 1
        name = submission.submit(request)
    shown = outside_name(name, 1000)
    print(f"Submitted {shown}\n  console: {outside_name(request.target.console_url(name), 1000)}")
    if not args.wait:
        print(f"  follow it with: {_resume_hint(name, args.env, args.overrides)}")
        return 0
    return _follow(request.target, name, args)


def _check_compiled_version(version: str, compiled: Path) -> None:
    """Without a registry a version is compiled/'s: it must be one compiled there.

    Raises:
        ConfigError: it is not, listing the versions compiled/ holds.
    """
    from vertex_rlhf.template.compiler import read_manifest

    known = sorted(read_manifest(compiled).get("templates", {}))
    if version not in known:
        raise ConfigError(
            [
                f"version {version!r}: vertex_ai.template_registry is not set, so versions"
                f" come from {compiled}/, which holds {', '.join(known) or 'none'}; give one"
                " of those, or set vertex_ai.template_registry to run a published version"
            ]
        )


def _confirmed(params: RLHFParams, compiled: Path, request: Any) -> bool:
    """Shows a terminal what the run books and asks to go on (default: no)."""
    from vertex_rlhf.views.booking import render_booking

    plan = _run_plan(params, compiled)
    print(
        render_booking(plan, request.template, params.vertex_ai.project_id, request.job_id),
        file=sys.stderr,
    )
    print("Submit it? [y/N] (--yes or YES=1 skips this question) ", end="", file=sys.stderr)
    sys.stderr.flush()
    try:
        answer = sys.stdin.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return answer.strip().lower() in ("y", "yes")


def _run_plan(params: RLHFParams, compiled: Path) -> Any:
    from vertex_rlhf.template import plan

    return plan.build_plan(params, compiled, plan.row_counts(params))


def cmd_plan(args: argparse.Namespace) -> int:
    """Prints what a run will book: machines, steps, stages, cache, template."""
    from vertex_rlhf.config.params import load_params
    from vertex_rlhf.template import plan

    params = load_params(environment(args), args.overrides)
    print(plan.render(_run_plan(params, compiled_dir(args))))
    return 0


def cmd_doctor(args: argparse.Namespace) -> int:
    """Checks credentials, project, APIs, bucket, service account, registry, quota, SDKs."""
    from vertex_rlhf.cloud import health
    from vertex_rlhf.config.params import load_params

    params = load_params(environment(args), args.overrides)
    results = health.run_checks(params, compiled_dir(args), health.Endpoints.from_env())
    print(outside(health.render(results), ERROR_LIMIT))  # it quotes the servers' answers
    return health.exit_status(results)


def cmd_monitor(args: argparse.Namespace) -> int:
    """Follows a job to its end with a live progress line and a final report."""
    from vertex_rlhf.cloud.vertex import VertexTarget, target_of

    default = VertexTarget.from_params(_vertex_params(args))
    name = default.job_name(args.job)
    return _follow(target_of(name, default), name, args)


def cmd_runs(args: argparse.Namespace) -> int:
    """Lists recent runs of the pipeline with state and version."""
    from vertex_rlhf.cloud import monitor
    from vertex_rlhf.cloud.vertex import VertexTarget
    from vertex_rlhf.template.compiler import read_manifest
    from vertex_rlhf.views import listings

    target = VertexTarget.from_params(_vertex_params(args))
    pipeline = read_manifest(compiled_dir(args)).get("pipeline") or "rlhf-tuning"
    runs = monitor.list_runs(target, pipeline, args.limit)
    print(listings.runs_table(runs, f"(no runs of {pipeline} in {target.parent})"))
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    """Cancels a run."""
    from vertex_rlhf.cloud import monitor
    from vertex_rlhf.cloud.vertex import VertexTarget, target_of

    default = VertexTarget.from_params(_vertex_params(args))
    name = default.job_name(args.job)
    monitor.cancel(target_of(name, default), name)
    print(f"Cancel requested for {name}; it stops after its running tasks are cancelled.")
    return 0


def cmd_metrics(args: argparse.Namespace) -> int:
    """Reads a run's TensorBoard event files into its metrics log; prints a summary; draws it."""
    from vertex_rlhf.cloud import metrics
    from vertex_rlhf.cloud.vertex import VertexTarget, target_of
    from vertex_rlhf.views import charts, tables

    default = VertexTarget.from_params(_vertex_params(args))
    name = default.job_name(args.job)
    job_id = name.rsplit("/", 1)[-1]
    log = Path(args.metrics_log or f"runs/{job_id}.jsonl")
    job = metrics.read_job(target_of(name, default), name)
    with metrics.EventFiles() as files:
        added, warnings = metrics.sync(job, log, files)
    for warning in warnings:
        print(f"warning: {outside(warning)}", file=sys.stderr)
    points = metrics.logged_points(metrics.read_log(log))
    print(f"{outside_name(name, 1000)}: {len(added)} new step record(s) in {_shown(log)}")
    print(tables.render_summary(metrics.summarize(points)))
    png = Path(args.png or log.with_suffix(".png"))
    if charts.metrics_png(points, png, f"Training metrics of {job_id}"):
        print(f"  chart: {_shown(png)}")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    """Compares runs side by side: one table and one PNG overlaying their metrics."""
    from vertex_rlhf.cloud import compare
    from vertex_rlhf.cloud.vertex import VertexTarget
    from vertex_rlhf.template.compiler import read_manifest
    from vertex_rlhf.views import charts, comparison, tables

    # KEY=VALUE items are overrides; job ids and resource names never hold "=".
    args.overrides = [*[j for j in args.jobs if "=" in j], *args.overrides]
    jobs = [*[j for j in args.jobs if "=" not in j], *args.jobs_text]
    default = VertexTarget.from_params(_vertex_params(args))
    if args.last is not None and jobs:
        raise ConfigError(["name the runs (JOBS=) or ask for the newest ones (LAST=), not both"])
    if args.last is not None:
        pipeline = read_manifest(compiled_dir(args)).get("pipeline") or "rlhf-tuning"
        names = compare.last_runs(default, pipeline, environment(args).name, args.last)
    else:
        names = compare.job_names(default, jobs)
    runs = compare.gather(default, names)
    print(tables.render_table(comparison.comparison_rows(runs)))
    png = Path(args.png or "runs/compare.png")
    if charts.comparison_png([(r.job_id, r.points) for r in runs], png, "Runs compared"):
        print(f"  chart: {_shown(png)}")
    return 0


def cmd_publish(args: argparse.Namespace) -> int:
    """Publishes the current compiled template to the registry in the parameters."""
    from vertex_rlhf.cloud import registry, submission
    from vertex_rlhf.template.compiler import record_publication

    host = _registry_host(args)
    compiled = compiled_dir(args)
    for notify in (False, True):  # the version, then its e-mail variant
        template = submission.local_template(compiled, notify=notify)
        assert template.path is not None
        if notify and not template.version.endswith(submission.NOTIFY_SUFFIX):
            break  # a version compiled before variants: one file, published above
        latest = submission.variant_tag(registry.LATEST, notify)
        published, uploaded = registry.publish(host, template.path, template.version, latest)
        variant = "notify" if template.version.endswith(submission.NOTIFY_SUFFIX) else ""
        version = template.version.removesuffix(submission.NOTIFY_SUFFIX)
        record_publication(compiled, version, host, published.digest, variant)
        state = "published" if uploaded else "already published (same content)"
        print(f"{template.name} {template.version}: {state}\n  {outside_name(published.uri, 1000)}")
    return 0


def cmd_versions(args: argparse.Namespace) -> int:
    """Lists the published versions and their tags."""
    from vertex_rlhf.cloud import registry, submission
    from vertex_rlhf.views import listings

    host = _registry_host(args)
    package = submission.local_template(compiled_dir(args)).name
    versions = registry.list_versions(host, package)
    print(listings.versions_table(versions, f"(nothing published in {host}/{package})"))
    return 0


def _registry_host(args: argparse.Namespace) -> str:
    host = _vertex_params(args).vertex_ai.template_registry
    if not host:
        raise ConfigError(
            [
                "vertex_ai.template_registry: not set; set it in params/ to"
                " https://REGION-kfp.pkg.dev/PROJECT/REPO"
            ]
        )
    return host


def cmd_validate_data(args: argparse.Namespace) -> int:
    """Validates and profiles an environment's datasets, or one --path."""
    import json

    from vertex_rlhf.config.params import load_params
    from vertex_rlhf.data import report as data_report
    from vertex_rlhf.views import datasets as dataset_view
    from vertex_rlhf.views import live

    if args.path:
        if not args.kind:
            raise ConfigError(["--kind is required with --path: preference, prompt or eval"])
        with live.read_progress() as progress:
            report, profile = data_report.check_dataset(
                args.path,
                args.kind,
                max_reported=args.max_reported,
                progress=progress,
                model=args.model or "",
                profile=not args.no_profile,
            )
        result = {
            "datasets": {
                args.kind: {"report": report, "profile": profile.summary() if profile else None}
            },
            "valid": not report["errors"],
        }
    elif args.env:
        sections = ("dataset", "training")
        params = load_params(environment(args), args.overrides, sections=sections)
        with live.read_progress() as progress:
            result = data_report.check_environment(
                params, args.max_reported, progress, profile=not args.no_profile
            )
    else:
        raise ConfigError(["name an environment (validate-data dev) or --path PATH --kind KIND"])
    print(json.dumps(result, indent=2) if args.json else dataset_view.render(result))
    if not result["valid"]:
        raise DataError("invalid rows found (listed above)", hint="correct or remove them")
    return 0


def cmd_convert_data(args: argparse.Namespace) -> int:
    """Converts prompt/chosen/rejected rows to the Vertex RLHF format."""
    from vertex_rlhf.data.convert import convert
    from vertex_rlhf.views import live

    rejects = args.rejects or (f"{args.output}.rejects.jsonl" if args.skip_invalid else None)
    with live.read_progress() as progress:
        stats = convert(
            args.input,
            args.output,
            args.kind,
            seed=args.seed,
            eval_output=args.eval_out,
            eval_fraction=args.eval_fraction,
            force=args.force,
            skip_invalid=args.skip_invalid,
            rejects=rejects,
            progress=progress,
        )
    print(
        f"read {stats.read} rows; wrote {stats.written['train']} to {_shown(args.output)}"
        + (f" and {stats.written['eval']} to {_shown(args.eval_out)}" if args.eval_out else "")
    )
    if args.kind == "preference":
        print(f"choice balance: 0: {stats.choices[0]}, 1: {stats.choices[1]} (seed {args.seed})")
    if stats.rejected:
        print(
            f"skipped {stats.rejected} invalid rows; see {_shown(rejects)}",
            file=sys.stderr,
        )
    return 0


def cmd_migrate_config(args: argparse.Namespace) -> int:
    """Writes params/<env>.yaml from a config file in the original description's layout."""
    from vertex_rlhf.config import legacy

    target, migration = legacy.migrate(args.config, params_dir(args), args.env)
    print(f"wrote {_shown(target)} from {_shown(args.config)} (not modified)")
    for note in migration.notes:
        print(f"  {note}")
    print(f"  check it with: `make check ENV={_shown(shlex.quote(str(target)))}`")
    return 0


def cmd_reference(args: argparse.Namespace) -> int:
    """Writes the parameter reference from the schema, or with --check, fails if stale."""
    from vertex_rlhf.template import reference, signature

    template = signature.current_template_path(compiled_dir(args))
    text = reference.render(template, params_dir(args) / "base.yaml")
    output = Path(args.output)
    current = output.read_text(encoding="utf-8") if output.is_file() else None
    if args.check:
        if current != text:
            raise PipelineError(
                f"{output} is stale against the schema", hint="run `make docs` and commit it"
            )
        print(f"{output} is up to date with the schema")
        return 0
    if current != text:
        output.parent.mkdir(parents=True, exist_ok=True)
        scratch = output.with_name(f".{output.name}.tmp")
        scratch.write_text(text, encoding="utf-8")
        scratch.replace(output)
    print(f"{output} ({'written' if current != text else 'unchanged'})")
    return 0


def _job_args(parser: argparse.ArgumentParser) -> None:
    _common(parser)
    parser.add_argument("job", help="job id or projects/P/locations/L/pipelineJobs/ID")
    parser.add_argument(
        "--env",
        default="dev",
        type=values.environment_spec("--env"),
        help="environment (name or file) whose project/region to use",
    )
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotlist overrides")


def _watch_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--metrics-log",
        type=values.output_path("--metrics-log"),
        help="JSONL metrics log (default runs/JOB_ID.jsonl)",
    )
    parser.add_argument(
        "--timeout", type=values.seconds("--timeout"), help="stop watching after SECONDS"
    )
    parser.add_argument(
        "--poll-interval",
        type=values.seconds("--poll-interval"),
        default=15.0,
        help="seconds between polls after a change (backs off to 60 while nothing changes)",
    )


def _api_timeout(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--timeout",
        type=values.seconds("--timeout"),
        help="give up on the Google APIs after SECONDS, retries included",
    )


def build_parser() -> argparse.ArgumentParser:
    """Builds the ``rlhf`` argument parser."""
    parser = argparse.ArgumentParser(
        prog="rlhf", description="RLHF tuning pipelines on Vertex AI, as code."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("compile", help="compile the pipeline into compiled/")
    _common(p)
    p.add_argument("--check", action="store_true", help="fail if compiled/ is stale")
    p.add_argument(
        "--amend",
        action="store_true",
        help="rewrite the current version with new content (only a version never published"
        " or released; otherwise bump PIPELINE_VERSION)",
    )
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("check", help="check an environment's parameters")
    _common(p)
    _env_args(p)
    p.add_argument("--print", action="store_true", help="print the resolved parameter values")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("steps", help="print the training steps a run will get")
    _common(p)
    _env_args(p)
    p.set_defaults(func=cmd_steps)

    p = sub.add_parser("validate-data", help="validate and profile datasets, local or gs://")
    _common(p)
    p.add_argument("env", nargs="?", type=values.environment_spec("environment"), help=ENV_HELP)
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="dotlist overrides")
    p.add_argument(
        "--path",
        type=values.local_data_path("--path"),
        help="a file or glob, local or gs://, instead of an environment",
    )
    p.add_argument("--kind", choices=KINDS, help="with --path")
    p.add_argument(
        "--model",
        type=values.model_name("--model"),
        help="with --path: rows must have this model's layout",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--max-reported",
        type=values.count("--max-reported", minimum=0),
        default=5,
        help="problems shown per dataset",
    )
    p.add_argument("--no-profile", action="store_true", help="validate only: no profile (faster)")
    p.set_defaults(func=cmd_validate_data)

    p = sub.add_parser("reference", help="write the parameter reference (docs/parameters.md)")
    _common(p)
    p.add_argument(
        "--output",
        type=values.output_path("--output"),
        default="docs/parameters.md",
        help="where to write it",
    )
    p.add_argument("--check", action="store_true", help="fail if it is stale")
    p.set_defaults(func=cmd_reference)

    p = sub.add_parser(
        "migrate-config", help="write params/<env>.yaml from an original-layout config file"
    )
    p.add_argument(
        "config",
        type=values.existing_file("migrate-config"),
        help="the original config file (dataset/training/vertex_ai)",
    )
    p.add_argument("--params-dir", default="params", help="where base.yaml is; written there")
    p.add_argument("--env", help="environment name (default: from the file name)")
    p.set_defaults(func=cmd_migrate_config)

    p = sub.add_parser("convert-data", help="convert prompt/chosen/rejected JSONL to Vertex's")
    p.add_argument(
        "input",
        type=values.local_data_path("input", directory_ok=False),
        help="input path or glob, local or gs://",
    )
    p.add_argument("output", type=values.data_output("output"), help="output file, local or gs://")
    p.add_argument("--kind", required=True, choices=("preference", "prompt"))
    p.add_argument(
        "--seed",
        type=values.count("--seed", minimum=0),
        default=0,
        help="seeds candidate placement and split",
    )
    p.add_argument(
        "--eval-out", type=values.data_output("--eval-out"), help="write an eval split here"
    )
    p.add_argument(
        "--eval-fraction",
        type=values.fraction("--eval-fraction"),
        default=0.0,
        help="share of prompts for eval",
    )
    p.add_argument("--force", action="store_true", help="replace existing outputs")
    p.add_argument("--skip-invalid", action="store_true", help="skip bad rows instead of stopping")
    p.add_argument(
        "--rejects",
        type=values.data_output("--rejects"),
        help="skipped rows go here (default OUTPUT.rejects.jsonl)",
    )
    p.set_defaults(func=cmd_convert_data)

    p = sub.add_parser("submit", help="submit a run of an environment to Vertex AI")
    _common(p)
    _env_args(p)
    p.add_argument("--version", help="registry version (tag or sha256:...) to run")
    p.add_argument("--job-id", help="reuse this job id (to retry a submit by hand)")
    p.add_argument("--dry-run", action="store_true", help="print the request; send nothing")
    p.add_argument("--wait", action="store_true", help="follow the run to its end")
    p.add_argument(
        "--yes",
        action="store_true",
        help="submit without asking (a terminal is asked to confirm what the run books)",
    )
    _watch_args(p)
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("plan", help="print what a run will book, from GCPC's own specs")
    _common(p)
    _env_args(p)
    p.set_defaults(func=cmd_plan)

    p = sub.add_parser("doctor", help="check that ENV can run: credentials, APIs, bucket, ...")
    _common(p)
    _env_args(p)
    _api_timeout(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("monitor", help="follow a run to its end and report")
    _job_args(p)
    _watch_args(p)
    p.set_defaults(func=cmd_monitor)

    p = sub.add_parser("metrics", help="a run's training metrics: JSONL log, summary, PNG")
    _job_args(p)
    p.add_argument(
        "--metrics-log",
        type=values.output_path("--metrics-log"),
        help="JSONL metrics log (default runs/JOB_ID.jsonl)",
    )
    p.add_argument(
        "--png",
        type=values.output_path("--png"),
        help="chart to write (default: the log's name with .png)",
    )
    _api_timeout(p)
    p.set_defaults(func=cmd_metrics)

    p = sub.add_parser("compare", help="compare runs side by side: table and PNG")
    _common(p)
    p.add_argument(
        "jobs", nargs="*", metavar="JOB", help="job ids or resource names (and overrides)"
    )
    p.add_argument(
        "--jobs",
        dest="jobs_text",
        type=values.shell_words("--jobs"),
        default=[],
        help="job ids separated by spaces, shell quoting rules (make JOBS=)",
    )
    p.add_argument(
        "--last",
        type=values.count("--last", minimum=0),  # the range is compare's (LAST=1..10)
        help="compare the newest N runs of --env instead",
    )
    p.add_argument(
        "--env",
        default="dev",
        type=values.environment_spec("--env"),
        help="environment whose project/region to use",
    )
    p.add_argument(
        "--png", type=values.output_path("--png"), help="chart to write (default runs/compare.png)"
    )
    _api_timeout(p)
    p.set_defaults(func=cmd_compare, overrides=[])

    p = sub.add_parser("runs", help="list recent runs with state and version")
    _common(p)
    _env_args(p)
    p.add_argument(
        "--limit", type=values.count("--limit"), default=20, help="how many runs at most"
    )
    _api_timeout(p)
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("cancel", help="cancel a run")
    _job_args(p)
    _api_timeout(p)
    p.set_defaults(func=cmd_cancel)

    p = sub.add_parser("publish", help="publish the compiled template to the registry")
    _common(p)
    _env_args(p)
    _api_timeout(p)
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("versions", help="list the published template versions and tags")
    _common(p)
    _env_args(p)
    _api_timeout(p)
    p.set_defaults(func=cmd_versions)
    return parser


def yes_no_flags(parser: argparse.ArgumentParser) -> list[str]:
    """The yes/no flags of every subcommand (``--dry-run``, ``--wait``, ``--yes``, ...)."""
    flags = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                flags += yes_no_flags(sub)
        elif isinstance(action, argparse._StoreTrueAction):
            flags += action.option_strings
    return sorted(set(flags))


def subcommands() -> list[str]:
    """The names of the subcommands this installation has."""
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def _without_traceback(record: logging.LogRecord) -> bool:
    """Keeps a library's logged error to one line (tracebacks with LOG_LEVEL=DEBUG only).

    The traceback becomes the exception's type and message; Google libraries' INFO
    chatter is dropped.
    """
    if record.name.startswith("google") and record.levelno < logging.WARNING:
        return False
    if record.exc_info and record.exc_info[1] is not None:
        error = record.exc_info[1]
        record.msg, record.args = f"{record.getMessage()} ({type(error).__name__}: {error})", None
    record.exc_info = None
    record.exc_text = None
    return True


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the CLI; domain errors print one screen and return their exit status."""
    try:
        return _main(argv)
    except BrokenPipeError:  # the reader left (`rlhf validate-data --json | head -1`)
        # Nothing more to say, to anyone: stdout goes nowhere, so that the exit's flush
        # cannot fail again; the status is a shell's for a process that SIGPIPE ended.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


def _parse(parser: argparse.ArgumentParser, argv: Sequence[str]) -> argparse.Namespace:
    """Parses the arguments; each flag's value passes its ``values`` type on the way.

    ``--flag=VALUE`` for a yes/no flag and ``--shell-words TEXT`` (how make passes
    DRY_RUN=, OVERRIDES=, ARGS=) are read by the same door first.
    """
    args, extra = parser.parse_known_args(values.expand_argv(argv, yes_no_flags(parser)))
    # Overrides may also follow the flags: `rlhf submit dev --dry-run training.kl_coeff=0.2`.
    if extra and hasattr(args, "overrides") and not any(x.startswith("-") for x in extra):
        args.overrides = [*args.overrides, *extra]
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def _main(argv: Sequence[str] | None) -> int:
    debug = os.environ.get("LOG_LEVEL", "").upper() == "DEBUG"
    logging.basicConfig(
        level=logging.DEBUG if debug else logging.INFO, format="%(levelname)s %(message)s"
    )
    for handler in logging.getLogger().handlers:
        handler.setFormatter(EscapingFormatter("%(levelname)s %(message)s"))
        if not debug:
            handler.addFilter(_without_traceback)
    # google-api-core makes an unconfigured "google" logger stop propagating, so the SDK's
    # records (tracebacks included) bypass the handler above; configured, it leaves it be.
    logging.getLogger("google").setLevel(logging.DEBUG if debug else logging.INFO)
    parser = build_parser()
    try:
        args = _parse(parser, sys.argv[1:] if argv is None else argv)
        from vertex_rlhf.cloud import calls

        # --timeout bounds every API call and retry (submit's bounds only its watch).
        budget = None if args.command == "submit" else getattr(args, "timeout", None)
        with calls.within(budget):
            status: int = args.func(args)
    except RLHFError as error:
        if debug:  # the traceback too, but the same exit status as without it
            import traceback

            traceback.print_exc()
        # Messages quote names, rows and answers from outside: escaped and bounded here too.
        print(outside(error.render(), ERROR_LIMIT), file=sys.stderr)
        return error.exit_status
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    return status


if __name__ == "__main__":
    sys.exit(main())
