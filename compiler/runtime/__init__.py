"""The Python side of a built library."""
