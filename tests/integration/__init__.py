"""Integration tests: the clients against the real test servers (tests/servers/)."""
