"""Data wing: datasets. Row rules (shipped into the validation component), reading local
and ``gs://`` files, profiling, conversion and the validate-data report. Imports ``config``
and the leaves (``steps``, ``errors``), never the cloud or template wings."""
