"""One module per command: snapshot.capture (capture.py) and stream.probe (probe.py).

Both are idempotent, because RabbitMQ delivers at least once: a finished job ignores its
command, a redelivered capture of a job left "running" by a dead worker simply runs again,
and every write is guarded by the version it was based on. Handlers see the outside world
through ports.py only.
"""
