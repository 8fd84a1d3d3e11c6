"""Builders of small, real-format model folders and files for tests and benches."""
