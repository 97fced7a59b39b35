"""Durable jobs: batch scoring from CSV or JSONL, split into leased chunks, run on taskiq."""
