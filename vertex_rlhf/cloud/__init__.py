"""Cloud wing: everything that talks to Google Cloud. Vertex AI target and clients, job
submission, the template registry and run monitoring. Only the faces (CLI, Python API)
import it; it imports the template, data and config wings."""
