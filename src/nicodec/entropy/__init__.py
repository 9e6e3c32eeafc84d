"""Entropy coding: integer probability tables and the constriction ANS coder around them."""
