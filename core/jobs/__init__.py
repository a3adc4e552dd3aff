"""Batch jobs: the SQLite store, plans over frame sequences, the local and Ray executors and the
jobs service.
"""
