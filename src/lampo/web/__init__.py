"""The HTTP API: the route table (``routes.py``) that serves and documents every route,
the ASGI app (``app.py``) over a small router (``asgi.py``), the handlers by resource
(``buyer.py``, ``webhooks.py``, ``admin.py``, ``pages.py``), auth, problem details, rate
limits, metrics and the OpenAPI document. ``lampo serve`` runs it with granian."""
