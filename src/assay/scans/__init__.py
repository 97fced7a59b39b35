"""Red-team scans of AI endpoints: attempts, findings and their reports."""
