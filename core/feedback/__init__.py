"""Feedback on artifacts: ratings, picks and keeps per user, kept durably in SQLite."""
