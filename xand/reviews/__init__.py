"""Reviewers' verdicts: the store (SQLAlchemy) and agreement statistics."""
