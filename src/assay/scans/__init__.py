"""Red-team scans of an organisation's AI targets: attempts, findings and reports."""
