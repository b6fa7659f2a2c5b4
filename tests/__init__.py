"""The test suite, a package so that every helper has one explicit name (``tests.helpers``, ...).

See ``tests/README.md`` for the kinds of tests, the folders they live in, and how to run each.
"""
