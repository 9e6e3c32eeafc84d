"""Integrations with other libraries (`import nicodec.plugins.pillow`)."""
