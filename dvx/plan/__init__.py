"""Reproduction plans: the extractions and probes behind a paper's tables, run with ``dvx run``.

``dvx/plan/seed002.toml`` is seed 002's Tables 2 and 3; :mod:`dvx.plan.plan` reads and checks a plan,
:mod:`dvx.plan.runner` runs it through the same configs and runners as ``dvx extract`` / ``probe`` /
``report``.
"""
