"""The engine core: the `Durably` facade and the execution of runs.

``durably.py`` (the facade), ``factory.py`` (``create_durably``), ``handles.py`` (job
handles), ``trigger.py`` (a trigger's input and options), ``worker.py`` (claiming and
supervision), ``execution.py`` (one claimed run), ``step.py`` (the job's view of it),
``watch.py`` (following a run) and ``maintenance.py`` (idle housekeeping). The core talks to
the database only through the Store (:mod:`durably_web.storage`) and imports no adapter,
browser, server or client code. See docs/architecture.md.
"""
