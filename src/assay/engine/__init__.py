"""The scoring engine, usable as a library without the rest of Assay.

It holds input schemas (field checks, derivations, cross-field rules), rules with safe
CEL expressions, ML models over runtimes chosen by artifact format, ensembles, bands,
explanations, model packs, artifact format sniffing and integrity (digests,
signatures), and the `Scorer` that runs them from raw records to results. It imports
only `assay.core.errors` (the base its own errors derive from) and, when a model of
their format loads, the runtimes' libraries: never a web, database or network library
(a test holds this). Any package may import any of its modules.
"""
