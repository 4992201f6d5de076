"""Config wing: what a run asks for. The parameter schema and its loader, and the one table
of supported models, accelerators and regions. Imports nothing above ``errors``."""
