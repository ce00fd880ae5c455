"""The HTTP API: the ASGI app (``app.py``), auth, problem details, rate limits, metrics
and the OpenAPI document. ``lampo serve`` runs it with granian."""
