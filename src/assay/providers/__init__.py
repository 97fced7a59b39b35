"""Evidence providers: declared sources of evidence called at scoring time.

See docs/threat-intel.md.
"""
