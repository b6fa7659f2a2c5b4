"""The two transports: thin I/O that moves bytes and decides nothing.

``polling`` and ``websocket`` are the transports; the private modules under them hold one job
each: ``_sockets`` (cooperative sockets, TLS), ``_tunnel`` (an HTTP proxy's CONNECT tunnel) and
``_errors`` (the one translation of foreign exceptions). Nothing outside this package imports
the private ones.
"""
