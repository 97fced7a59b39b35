"""AI endpoints an organisation registers to scan: how to reach them and how hard to push."""
