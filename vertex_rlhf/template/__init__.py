"""Template wing: the compiled pipeline. Compiling it reproducibly into ``compiled/`` with
a manifest, and reading a compiled template's signature to check parameters against it.
Imports ``data`` and ``config`` (and the ``pipelines``/``components`` packages), never ``cloud``."""
