"""The embedded default's broker: kombu's SQLAlchemy transport, polling the database often enough.

kombu polls an SQL broker once a second, and took about a task a second off a queue: a
broadcast's hundreds of delivery reports then held citizens' messages back for minutes.
A tenth of a second costs one cheap indexed query per idle interval.
"""

from __future__ import annotations

from kombu.transport.sqlalchemy import Transport


class DatabaseTransport(Transport):
    polling_interval = 0.1
