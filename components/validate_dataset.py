"""Component: validate one RLHF dataset (every row of every matching file)."""

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
