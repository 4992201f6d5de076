"""Library for the RLHF pipeline: parameter schema, step maths, dataset rules, compiler, CLI."""
