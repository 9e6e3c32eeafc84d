"""Learned transforms and entropy models; `registry` maps model names to classes."""
