"""Audit stores as the tests use them: emptied after each test, and several appending at once
as gateway and workers do."""

import threading
from collections.abc import Callable, Iterator, Sequence

from sqlalchemy import delete

from fpg_audit import AuditEvent, AuditStore
from fpg_audit.schema import api_keys, audit_records


def emptied_after_use(opened: AuditStore) -> Iterator[AuditStore]:
    """Yield ``opened``, then delete its rows and close it: the PostgreSQL database outlives
    the test."""
    try:
        yield opened
    finally:
        with opened.engine.begin() as connection:
            connection.execute(delete(audit_records))
            connection.execute(delete(api_keys))
        opened.close()


def append_from_threads(
    writers: Sequence[AuditStore], event: Callable[[int], AuditEvent], each: int = 10
) -> None:
    """Every writer appends ``each`` events from a thread of its own, then is closed."""

    def write(writer: AuditStore, offset: int) -> None:
        for number in range(each):
            writer.append(event(offset * 100 + number))

    threads = [threading.Thread(target=write, args=(w, i)) for i, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for writer in writers:
        writer.close()
