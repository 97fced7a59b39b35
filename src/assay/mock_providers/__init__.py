"""Offline stand-ins for VirusTotal v3, AbuseIPDB v2 and URLhaus, answering fake data from
a documented data set: for demos, tests and benchmarks. Not part of the production API."""
