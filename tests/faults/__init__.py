"""Fault tests: scripted raw-socket servers, a misbehaving proxy, and the soak."""
