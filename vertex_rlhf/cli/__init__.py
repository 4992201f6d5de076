"""The ``rlhf`` command line: a face over ``vertex_rlhf.usecases``, a module per noun.

Each noun's module (``templates``, ``parameters``, ``datasets``, ``runs``, ``metrics``,
``doctor``) adds its subcommands to the parser and, for each, turns the parsed flags into
a use case's typed inputs and its record into lines through ``vertex_rlhf.views``.
"""

from vertex_rlhf.cli.app import build_parser, main, parse, subcommands, yes_no_flags

__all__ = ["build_parser", "main", "parse", "subcommands", "yes_no_flags"]
