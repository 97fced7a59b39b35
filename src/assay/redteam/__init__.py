"""The red-team library: probe sets, prompt transforms, the taxonomy and detector records.

A pure library, usable without the rest of Assay running: it reads the probe sets and
the detector pack shipped in ``examples/redteam`` and builds the records the detector
rules models score, through `assay.engine` only. It imports no web, database or network
library (the import contracts hold this); scans, targets and reports live elsewhere.
"""
