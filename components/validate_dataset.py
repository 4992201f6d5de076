"""Component: validate one RLHF dataset (every row of every matching file)."""

from typing import NamedTuple, Optional

from kfp import dsl

from components import BASE_IMAGE
from vertex_rlhf.data.rules import SHIPPED, report_summary, validate_dataset_files


@dsl.component(base_image=BASE_IMAGE, install_kfp_package=False, additional_funcs=list(SHIPPED))
def validate_dataset(
    kind: str,
    dataset: Optional[str] = None,
    max_reported: int = 5,
    job_uuid: str = "",
) -> NamedTuple("DatasetStats", [("rows", int), ("layout", str)]):  # type: ignore[valid-type]
    """Validates a preference, prompt or eval dataset and counts its rows.

    Fails the task, before any accelerator is booked, if the path matches no file,
    a file is empty, or any row breaks the Vertex RLHF format; the message names
    the file, line and field of the first problems and counts them all.

    Args:
        kind: preference, prompt or eval.
        dataset: gs:// path or glob (read through /gcs/); empty is allowed for eval only.
        max_reported: how many problems to show word for word.
        job_uuid: the job's uuid; not read: it makes the task's cache key unique to the
            job, so the check runs even when job-level caching is on.

    Returns:
        rows: the number of rows; layout: text or chat (eval: prefixed preference/prompt).
    """
    DatasetStats = NamedTuple("DatasetStats", [("rows", int), ("layout", str)])
    if not dataset:
        if kind == "eval":
            print("No eval dataset given: nothing to validate.")
            return DatasetStats(0, "")
        raise ValueError(f"the {kind} dataset is required")
    report = validate_dataset_files(dataset, kind, max_reported)
    summary = report_summary(report)
    print(summary)
    if report["errors"]:
        raise ValueError(summary)
    return DatasetStats(report["rows"], report["layout"])
