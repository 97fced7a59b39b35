"""Threat indicators, canonicalised: a library usable without the rest of Assay.

`service.canonicalise` reads one indicator as people paste it (defanged or not: an IP
address, a domain, a URL, an email address or a file hash), says what type it is and
gives its one canonical spelling, or refuses it with a stable code when it cannot or
must not be looked up (a private address, a name that is not public). It imports no
web, database or network library of its own (the import contracts hold this), and
nothing of Assay.
"""
