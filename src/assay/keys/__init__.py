"""The field-encryption key lifecycle: data keys, rotation, re-encryption, retirement."""
