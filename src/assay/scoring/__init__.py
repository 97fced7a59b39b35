"""The scoring domain: input schemas, rules, ML runtimes, ensembles, bands and integrity.

Pure Python, no HTTP and no database: the registry, routes and prediction records are
built on top of `assay.scoring.scorer.Scorer` and `assay.scoring.model_loader`.
Heavy ML libraries are imported only when a runtime of that format is loaded.
"""
