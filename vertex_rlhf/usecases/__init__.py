"""usecases wing: what a user can ask of the project, as functions over typed records.

Each module holds the use cases of one noun (templates, parameters, runs, schedules,
datasets, metrics, doctor). A use case takes checked, typed inputs (a ``Setting``, paths, counts),
calls the wings below, and returns a record; it prints nothing. The ``rlhf`` CLI and the
Python API are two thin faces over this layer: they turn what a user typed into inputs,
call one use case, and hand its record to a renderer in ``views``.
"""
