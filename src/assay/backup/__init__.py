"""Backups an operator can restore: `assay backup` and `assay restore`.

A backup is a directory: every table as JSON lines read in one consistent snapshot,
the artifact store's files, the instance's secrets only when asked for (sealed with a
passphrase), and a manifest with the SHA-256 of each file. Restore checks every digest
before it writes anything, and writes into an empty installation only.
"""
