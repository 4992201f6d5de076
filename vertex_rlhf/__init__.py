"""RLHF tuning on Vertex AI, as code.

The library is grouped in wings by role; imports run one way, from the faces down:

    cli (faces) -> cloud -> template (+ pipelines, components) -> data -> config -> steps, errors

``steps`` (the step maths) and ``errors`` (the coded errors) are leaves any wing may use.
"""
