"""Learned transforms and entropy models; `registry` maps model names to classes."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"  # the shipped models and read-outs
