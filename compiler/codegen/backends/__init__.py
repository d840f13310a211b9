"""Backends: one class per target; dialect differences are attributes."""
