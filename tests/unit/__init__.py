"""Unit tests: the sans-IO core and pure helpers, no sockets and no servers."""
