"""Several processes' stores appending at once, as gateway and workers do."""

import threading
from collections.abc import Callable, Sequence

from fpg_audit import AuditEvent, AuditStore


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
