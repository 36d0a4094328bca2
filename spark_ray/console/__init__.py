"""The operator console: one web page per concern (overview, streams, trading, research, data,
alerts, chaos and evidence) over a JSON API that scripts use too.

This package is the functional core: it turns what the platform's parts report (fabric
reports, executor and breaker status, run folders, the lake, Alertmanager) into the documents
of ``docs/CONSOLE.md``, guards mutations (token, origin, journal) and builds the ASGI app. It
never imports ``ray``: the live parts reach it through :class:`spark_ray.console.web.Live`,
which ``spark_ray.app.console_service`` implements with actors and deploys on Ray Serve.
"""
