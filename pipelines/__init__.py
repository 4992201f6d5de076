"""The pipeline definitions; compiled by `make compile` into compiled/."""
