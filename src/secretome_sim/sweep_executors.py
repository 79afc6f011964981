"""Where chunks of points run: in this process, in local worker processes, or on Dask.

Every backend calls the same ``run_chunk_task`` on the same chunks, so the same design gives the
same numbers on each. Each keeps a bounded number of chunks in flight (a few per worker) and
yields results as they complete, so memory does not grow with the number of points.

Local processes are the default: they start in ~0.1 s when forked (the workers inherit the
already compiled model) and cost nothing per task beyond pickling the chunk. Dask costs seconds
to start and milliseconds per task (performance-notes.md); it is for a cluster that one machine
cannot match (``--scheduler tcp://host:8786``), or ``--scheduler local`` to try the path.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import pickle
from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any

import numpy as np

from .errors import SecretomeError
from .sweep_worker import ChunkResult, JobRef, SweepJob, evaluator_for, run_chunk_task

IN_FLIGHT_PER_WORKER = 4
POINTS_PER_WORKER_POOL = 20_000  # then the pool is replaced (see run_processes)


@dataclass(frozen=True)
class Task:
    """One chunk: its index, point ids and the factor values of each point."""

    chunk: int
    points: np.ndarray
    values: list[list[Any]]


class BackendError(SecretomeError):
    """A backend could not start or lost a worker (finished chunks are kept; use --resume)."""

    exit_code = 1


def run_serial(job: SweepJob, tasks: Iterable[Task]) -> Iterator[ChunkResult]:
    """Every chunk in this process, on one compiled model."""
    for task in tasks:
        yield run_chunk_task(job, task.chunk, task.points, task.values)


def run_processes(
    job: SweepJob,
    tasks: Iterable[Task],
    workers: int,
    points_per_pool: int | None = None,
) -> Iterator[ChunkResult]:
    """Chunks on ``workers`` local processes, each with its own compiled model.

    Where fork is available the model is compiled here first and the workers inherit it;
    elsewhere each worker unpickles the job and compiles once in its initializer. The pool is
    replaced after ``points_per_pool`` points (default POINTS_PER_WORKER_POOL per worker):
    libRoadRunner 2.10 leaks ~140 bytes per simulate() call, so a worker that lived through
    a million-point sweep would grow without bound; a fresh fork costs ~0.1 s.
    """
    methods = multiprocessing.get_all_start_methods()
    forking = "fork" in methods
    ref = JobRef(job.key, None if forking else pickle.dumps(job))
    if forking:
        evaluator_for(job)  # compiled once, inherited by every worker
        context = multiprocessing.get_context("fork")
    else:  # pragma: no cover - macOS/Windows
        context = multiprocessing.get_context("spawn")
    limit = points_per_pool or POINTS_PER_WORKER_POOL * workers
    source = iter(tasks)
    while True:
        batch = _up_to_points(source, limit)
        first = next(batch, None)
        if first is None:
            return
        yield from _run_pool(ref, context, itertools.chain([first], batch), workers)


def _up_to_points(tasks: Iterator[Task], limit: int) -> Iterator[Task]:
    """The next tasks from ``tasks``, stopping once they hold ``limit`` points or more."""
    taken = 0
    while taken < limit:
        task = next(tasks, None)
        if task is None:
            return
        taken += len(task.points)
        yield task


def _run_pool(
    ref: JobRef, context: Any, tasks: Iterator[Task], workers: int
) -> Iterator[ChunkResult]:
    """One pool of workers through ``tasks``, a bounded number of chunks in flight."""
    pool = ProcessPoolExecutor(
        max_workers=workers, mp_context=context, initializer=_init_worker, initargs=(ref,)
    )
    pending: set[Any] = set()
    try:
        while True:
            while len(pending) < workers * IN_FLIGHT_PER_WORKER:
                task = next(tasks, None)
                if task is None:
                    break
                pending.add(
                    pool.submit(run_chunk_task, ref.light(), task.chunk, task.points, task.values)
                )
            if not pending:
                break
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                yield future.result()
    except BrokenProcessPool as exc:
        raise BackendError(
            f"a worker process died ({exc}); the chunks that finished are saved: rerun with "
            "--resume to continue"
        ) from None
    except BaseException:  # Ctrl-C or the consumer stopped: do not wait for running chunks
        for process in list(getattr(pool, "_processes", {}).values()):
            process.terminate()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


def _init_worker(ref: JobRef) -> None:
    """Silence Ctrl-C in workers (the main process handles it) and build the evaluator."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if ref.payload is not None:  # pragma: no cover - spawn platforms
        run_chunk_task(ref, -1, np.zeros(0, dtype=np.int64), [])


def run_dask(
    job: SweepJob, tasks: Iterable[Task], scheduler: str, workers: int
) -> Iterator[ChunkResult]:
    """Chunks on a Dask cluster: ``scheduler`` is an address, or 'local' for a local cluster
    of ``workers`` single-threaded processes (simulate holds the GIL: threads do not help)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BackendError(
            "the Dask backend needs the 'distributed' package: pip install 'secretome-sim[dask]'"
        ) from None
    cluster = None
    try:
        if scheduler == "local":
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
                silence_logs=40,
            )
            client = Client(cluster)
        else:
            client = Client(scheduler, timeout="20s")
    except (OSError, TimeoutError) as exc:
        if cluster is not None:
            cluster.close()
        raise BackendError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from None
    try:
        capacity = max(1, sum(client.nthreads().values())) if scheduler != "local" else workers
        shared = client.scatter(JobRef(job.key, pickle.dumps(job)), broadcast=True)
        source = iter(tasks)
        stream = as_completed()
        in_flight = 0

        def submit() -> bool:
            task = next(source, None)
            if task is None:
                return False
            future = client.submit(
                run_chunk_task, shared, task.chunk, task.points, task.values, pure=False
            )
            stream.add(future)
            return True

        while in_flight < capacity * IN_FLIGHT_PER_WORKER and submit():
            in_flight += 1
        for future in stream:
            result = future.result()
            in_flight -= 1
            yield result
            if submit():
                in_flight += 1
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def default_workers() -> int:
    """Usable cores (respects CPU affinity, e.g. in containers and CI)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - macOS
        return max(1, os.cpu_count() or 1)
