"""capport on Dagster: YAML-described Polars pipelines as Dagster jobs."""
