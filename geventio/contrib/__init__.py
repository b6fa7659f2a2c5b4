"""Optional integrations. Each module here needs an extra and is imported only on request.

- :mod:`geventio.contrib.server`: the embedded echo server (``pip install 'geventio[server]'``).
- :mod:`geventio.contrib.locust`: ``EngineIOUser`` and ``SocketIOUser`` for Locust
  (``pip install 'geventio[locust]'``).

``import geventio`` imports none of them.
"""
