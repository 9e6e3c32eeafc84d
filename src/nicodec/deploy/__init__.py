"""Deployment formats beyond the Python package."""
