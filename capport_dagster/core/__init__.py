"""The pure core of capport: config, transforms over Polars, tasks, the graph and the runtime.

Nothing in this package imports Dagster: it can be tested, reasoned about and reused on its own,
and the translator layer (`capport_dagster.translate`) only reads what it produces.
"""
