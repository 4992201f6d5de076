"""Component: validate one RLHF dataset (every row of every matching file).

What ships is a small, stable unit: every function of ``vertex_rlhf/data/rules.py``
(the row contract and one single-pass reader), ``jsonl.py`` (the JSONL rules) and
``matching.py`` (which files a path selects), plus the catalog's name rule, as source
(kfp ``additional_funcs``; a test holds that these modules are exactly what ships). The
CLI's faster readers (``data/parallel.py``) never ship; editing them, or anything else
in the library, never rewrites a template version.

Why not kfp 2.17's ``embedded_artifact_path`` (a real package, extracted at run time
onto ``sys.path``): kfp gzips a tar of the folder with the current time in the gzip
header and the files' mtimes and owners in the tar, so the template would change at
every compile (``make check-compiled`` and "a version is never rewritten" rely on
byte-identical output); the YAML would carry an opaque base64 blob that no one can
review or diff. Compression would buy headroom under the 128 KiB ``MAX_ARG_STRLEN``
(the program is one argv string either way), but plain source stays under the 48 KiB
this project allows (tests/test_components.py), so readable and reproducible wins.
"""

from typing import NamedTuple, Optional

from kfp import dsl

from components import BASE_IMAGE
from vertex_rlhf.config.catalog import canonical_model_name
from vertex_rlhf.data import jsonl, matching, rules
from vertex_rlhf.data.rules import printable, report_summary, validate_dataset_files

# Everything the component runs, shipped by source, callees before callers.
SHIPPED = [canonical_model_name, *matching.SHIPPED, *jsonl.SHIPPED, *rules.SHIPPED]


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False, additional_funcs=SHIPPED)
def validate_dataset(
    kind: str,
    dataset: Optional[str] = None,
    max_reported: int = 5,
    large_model_reference: str = "",
    model_layouts: Optional[dict] = None,
    job_uuid: str = "",
) -> NamedTuple("DatasetStats", [("rows", int), ("layout", str)]):  # type: ignore[valid-type]
    """Validates a preference, prompt or eval dataset and counts its rows.

    Fails the task, before any accelerator is booked, if the path matches no file,
    a file is empty or not JSONL, any row breaks the Vertex RLHF format, or the rows'
    layout (text or chat) does not fit the model; the message names the file, line and
    field of the first problems and counts them all.

    Args:
        kind: preference, prompt or eval.
        dataset: gs:// path or glob (read through /gcs/); empty is allowed for eval only.
        max_reported: how many problems to show word for word.
        large_model_reference: the model to be tuned.
        model_layouts: canonical model name -> "text" or "chat" (from the catalog).
        job_uuid: the job's uuid; not read: it makes the task's cache key unique to the
            job, so the check runs even when job-level caching is on.

    Returns:
        rows: the number of rows; layout: text or chat (eval: prefixed preference/prompt).
    """
    import sys

    DatasetStats = NamedTuple("DatasetStats", [("rows", int), ("layout", str)])
    if not dataset:
        if kind == "eval":
            print("No eval dataset given: nothing to validate.")
            return DatasetStats(0, "")
        raise ValueError(f"the {kind} dataset is required")
    expected = (model_layouts or {}).get(canonical_model_name(large_model_reference), "")
    report = validate_dataset_files(dataset, kind, max_reported, large_model_reference, expected)
    # A file name or row may hold what stdout cannot encode: print it escaped, never crash.
    summary = printable(report_summary(report), getattr(sys.stdout, "encoding", None))
    print(summary)
    if report["errors"]:
        raise ValueError(summary)
    return DatasetStats(report["rows"], report["layout"])
