"""Cloud wing: everything that talks to Google Cloud. Vertex AI target and clients, job
submission, the template registry, run monitoring, training metrics from the trainers'
event files, and runs side by side. Only the faces (CLI, Python API) and the views import
it; it imports the template, data and config wings."""
