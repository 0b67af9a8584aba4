"""The pure core of capport: config, the `every` grammar, transforms over Polars, tasks and the graph.

Nothing in this package imports Dagster: it can be tested, reasoned about and reused on its own,
and the translator layer (`capport_dagster.translate`) only reads what it produces.
"""
