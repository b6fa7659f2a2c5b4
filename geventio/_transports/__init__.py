"""The two transports: thin I/O that moves bytes and decides nothing."""
