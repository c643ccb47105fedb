"""Judging: pure functions that turn readings and limits into verdicts."""
