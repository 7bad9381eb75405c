"""Several remote batches in flight at once: each batch's requests are sent from a thread of its
own and wait there (on the network, the server's queue and its forward passes), while the calling
thread keeps what comes back, in the order batches finish.

Against a server that runs one request per model replica at a time, this overlaps the network and
queueing time of one batch with another's compute, not compute with compute: with a single replica
the forward passes still run one after another.

Threads rather than nnsight's non-blocking jobs, because a batch of some analyses is two requests
where the second depends on the first (:class:`~anchors.experiments.HeadIntervention`); a thread
runs the batch's own code unchanged. nnsight keeps its tracing state per thread.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Sequence, TypeVar

T = TypeVar("T")
POLL_S = 0.2  # how often the waiting thread wakes, so that Ctrl-C is seen at once


def in_flight(compute: Callable[[int], T], indices: Sequence[int], n: int) -> Iterator[tuple[int, T]]:
    """``(index, compute(index))`` for every index, as each finishes, with at most ``n`` computing at
    once (``n`` = 1: one after another, in this thread).

    The first error stops new batches from starting; those already running finish (what they
    return is still yielded, so a resumable run keeps them), then the error is raised. On Ctrl-C
    (or when the consumer stops early) nothing new starts and nothing more is yielded; the threads
    still waiting on the server are daemons, abandoned to finish or fail on their own.

    >>> from anchors.runner.in_flight import in_flight
    >>> sorted(in_flight(lambda i: i * i, [1, 2, 3], 2))
    [(1, 1), (2, 4), (3, 9)]
    """
    if n <= 1:
        for index in indices:
            yield index, compute(index)
        return
    finished: queue.Queue = queue.Queue()

    def work(index: int) -> None:
        try:
            finished.put((index, compute(index), None))
        except BaseException as error:  # noqa: BLE001 - handed to the waiting thread, which raises it
            finished.put((index, None, error))

    waiting, running, failure = list(indices)[::-1], 0, None
    while waiting or running:
        while waiting and running < n and failure is None:
            threading.Thread(target=work, args=(waiting.pop(),), daemon=True, name="anchors-batch").start()
            running += 1
        if running == 0:
            break
        index, result, error = _next(finished)
        running -= 1
        if error is not None:
            failure = failure or error
        else:
            yield index, result
    if failure is not None:
        raise failure


def _next(finished: queue.Queue) -> tuple:
    """The next finished batch, waking every :data:`POLL_S` so a KeyboardInterrupt gets through."""
    while True:
        try:
            return finished.get(timeout=POLL_S)
        except queue.Empty:
            continue
