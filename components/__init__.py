"""Lightweight KFP components that run before GCPC's RLHF graph.

They run on GCPC's own image, which already holds kfp, so nothing is installed at
run time; their logic is shipped by source from ``vertex_rlhf`` (one source of truth).
"""

from importlib.metadata import version

# GCPC's image, pinned to the GCPC version the pipeline is compiled with.
BASE_IMAGE = "gcr.io/ml-pipeline/google-cloud-pipeline-components:" + version(
    "google-cloud-pipeline-components"
)
