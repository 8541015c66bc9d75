"""``make bench``: our import through the bus side by side with plain PostgreSQL.

``python -m bench [--rows N] [--big-rows N] [--xlsx-rows N] [--quick] [--profile]``
generates its data under ``bench/data`` (reused when present), starts embedded NATS and
PostgreSQL unless ``DM_NATS_URL``/``DM_DATABASE_URL`` are set, and writes its figures to
``bench/results.json``.
"""
