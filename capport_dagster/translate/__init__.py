"""The translator layer: a validated capport `Project` becomes Dagster definitions.

This is the only package that imports Dagster. It reads the core's objects and never changes
them; users customise the mapping by subclassing `CapportTranslator`.
"""
