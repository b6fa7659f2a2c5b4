"""Whole-process tests: the CLI, the examples and Locust, each in its own process."""
