"""Evaluation: metrics, baseline codecs, BD-rate, reports and plots."""
