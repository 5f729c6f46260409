"""Models in worker processes, so that concurrent calls really run on several cores.

Paddle Inference keeps the GIL while a predictor runs on the CPU (its Python binding releases it
only for NPUs), so predictors on threads of one process run one at a time. Here each worker
process loads every model of the pool once and runs one batch at a time; a call borrows a free
worker. Arrays cross through a memory-mapped file in /dev/shm owned by the parent (a memcpy each
way: about 0.5 ms for a 960x960 det input, against 10 ms through a pipe); an output too large for
the region comes back through the pipe once, and the region grows for the next call.
"""

from __future__ import annotations

import atexit
import logging
import mmap
import multiprocessing
import os
import queue
import signal
import tempfile
from typing import NamedTuple, Sequence

import numpy as np

from pdserving import malloc
from pdserving.engine import Engine, EngineOptions
from pdserving.engine.model_folder import ModelFolder
from pdserving.engine.paddle_engine import check_gpu
from pdserving.parent import die_with_parent

log = logging.getLogger(__name__)
ALIGN = 64
INITIAL_REGION = 32 << 20
SHM_DIR = "/dev/shm" if os.path.isdir("/dev/shm") else tempfile.gettempdir()


class WorkerError(RuntimeError):
    """A model failed inside a worker (the message is the worker's exception)."""


class Reply(NamedTuple):
    """A worker's answer: at start, each model's (input names, output names) in ``io``; to a
    call, where its outputs are in the shared region (``specs``), plus the outputs themselves
    when they did not fit (``inline``); or the worker's exception as ``error``."""

    error: str = ""
    io: dict | None = None
    specs: list[tuple] | None = None
    inline: dict[str, np.ndarray] | None = None


def _layout(arrays: dict[str, np.ndarray]) -> tuple[list[tuple], int]:
    """Where each array goes in a region: (name, shape, dtype, offset), and the bytes needed."""
    specs, offset = [], 0
    for name, a in arrays.items():
        specs.append((name, a.shape, a.dtype.str, offset))
        offset += -(-a.nbytes // ALIGN) * ALIGN
    return specs, offset


def _write(region: mmap.mmap, arrays: dict[str, np.ndarray], specs: list[tuple]) -> None:
    for (_, shape, dtype, offset), a in zip(specs, arrays.values()):
        np.ndarray(shape, dtype, buffer=region, offset=offset)[...] = a


def _read(region: mmap.mmap, specs: list[tuple], copy: bool) -> dict[str, np.ndarray]:
    out = {}
    for name, shape, dtype, offset in specs:
        a = np.ndarray(shape, dtype, buffer=region, offset=offset)
        out[name] = a.copy() if copy else a
    return out


def _map(path: str, size: int) -> mmap.mmap:
    with open(path, "r+b") as f:
        return mmap.mmap(f.fileno(), size)


def _worker_main(conn, models: dict[str, ModelFolder], options: EngineOptions,
                 warmup: dict[str, list[dict[str, np.ndarray]]]) -> None:
    """A worker process: load the models, say which names they take, then serve calls."""
    malloc.for_models()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    die_with_parent()  # a killed server leaves no worker behind, even mid-call
    try:
        from pdserving.engine.paddle_engine import PaddleEngine

        engines = {name: PaddleEngine(folder, options, warmup=warmup.get(name, ()))
                   for name, folder in models.items()}
        # Paddle installs a handler that prints a C++ "FatalError" report on SIGTERM; a worker
        # told to stop just stops.
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        conn.send(Reply(io={n: (e.input_names, e.output_names) for n, e in engines.items()}))
    except Exception as e:  # reported to the parent, which raises it
        conn.send(Reply(error=str(e)))
        return
    region = None
    while True:
        try:
            msg = conn.recv()
        except (EOFError, KeyboardInterrupt):  # parent gone: leave quietly
            return
        name, specs, fetch, new_region = msg
        if new_region:
            region = _map(*new_region)
        try:
            outputs = engines[name].run(_read(region, specs, copy=False), fetch)
            out_specs, need = _layout(outputs)
            if need <= len(region):
                _write(region, outputs, out_specs)
                conn.send(Reply(specs=out_specs))
            else:
                conn.send(Reply(specs=out_specs, inline=outputs))
        except Exception as e:
            conn.send(Reply(error=f"{type(e).__name__}: {e}"))


class _Worker:
    """The parent's side of one worker process: its pipe and its shared region."""

    def __init__(self, ctx, models: dict[str, ModelFolder], options: EngineOptions,
                 warmup: dict[str, list[dict[str, np.ndarray]]], index: int):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_worker_main, args=(child, models, options, warmup),
                                name=f"pdserving-model-worker-{index}", daemon=True)
        self.proc.start()
        child.close()
        self.region: mmap.mmap | None = None

    def wait_ready(self) -> dict:
        try:
            reply: Reply = self.conn.recv()
        except EOFError:
            raise WorkerError(f"model worker exited with code {self.proc.exitcode}") from None
        if reply.error:
            raise WorkerError(reply.error)
        return reply.io

    def call(self, name: str, feeds: dict[str, np.ndarray],
             fetch: Sequence[str] | None) -> dict[str, np.ndarray]:
        specs, need = _layout(feeds)
        new_region = None
        if self.region is None or need > len(self.region):
            new_region = self._grow(max(need, INITIAL_REGION))
        _write(self.region, feeds, specs)
        self.conn.send((name, specs, list(fetch) if fetch else None, new_region))
        reply: Reply = self.conn.recv()
        if new_region:
            os.unlink(new_region[0])  # both sides have it mapped; the name is no longer needed
        if reply.error:
            raise WorkerError(f"model {name!r} failed: {reply.error}")
        if reply.inline is not None:
            self._grow(_layout(reply.inline)[1])  # next time the output fits
            return reply.inline
        return _read(self.region, reply.specs, copy=True)

    def _grow(self, size: int) -> tuple[str, int]:
        fd, path = tempfile.mkstemp(prefix="pdserving-", dir=SHM_DIR)
        try:
            os.ftruncate(fd, size)
            region = mmap.mmap(fd, size)
        finally:
            os.close(fd)
        if self.region is not None:
            self.region.close()
        self.region = region
        return path, size

    def close(self) -> None:
        self.conn.close()
        self.proc.join(5)
        if self.proc.is_alive():
            self.proc.kill()
            self.proc.join()
        if self.region is not None:
            self.region.close()
            self.region = None


class PooledModel(Engine):
    """One model of a ``WorkerPool``, with ``PaddleEngine``'s surface (``run``, call)."""

    engine = "paddle"

    def __init__(self, pool: "WorkerPool", name: str, input_names: list[str],
                 output_names: list[str]):
        self.pool = pool
        self.name = name
        self.input_names = input_names
        self.output_names = output_names

    def run(self, feeds: dict[str, np.ndarray],
            fetch: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return self.pool.run(self.name, feeds, fetch)


class WorkerPool:
    """``workers`` processes, each with every model in ``models`` (name -> model folder).

    ``options.threads`` math threads per worker; ``warmup`` maps a model name to the feeds its
    predictor runs once at start.
    """

    def __init__(self, models: dict[str, ModelFolder | str | os.PathLike],
                 options: EngineOptions, workers: int,
                 warmup: dict[str, list[dict[str, np.ndarray]]] | None = None):
        check_gpu(options)  # at once, not after starting workers
        ctx = multiprocessing.get_context("spawn")  # no fork of a process holding threads
        folders = {n: ModelFolder.of(f) for n, f in models.items()}
        self._start = lambda i: _Worker(ctx, folders, options.for_worker(i), warmup or {}, i)
        self._workers = [self._start(i) for i in range(workers)]
        atexit.register(self.close)  # before multiprocessing's own exit hook terminates them
        try:
            names = [w.wait_ready() for w in self._workers][0]
        except BaseException:
            self.close()
            raise
        self.models = {n: PooledModel(self, n, *io) for n, io in names.items()}
        self._free: queue.SimpleQueue = queue.SimpleQueue()
        for w in self._workers:
            self._free.put(w)

    def run(self, name: str, feeds: dict[str, np.ndarray],
            fetch: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        worker = self._free.get()
        try:
            return worker.call(name, feeds, fetch)
        except (EOFError, OSError):
            worker = self._replace(worker)
            raise WorkerError(f"model worker died while running {name!r}; restarted") from None
        finally:
            self._free.put(worker)

    def _replace(self, dead: _Worker) -> _Worker:
        """A crashed worker (killed, out of memory) gives way to a fresh one."""
        log.error("model worker %s died (exit code %s); starting another",
                  dead.proc.pid, dead.proc.exitcode)
        dead.close()
        index = self._workers.index(dead)
        self._workers[index] = fresh = self._start(index)
        fresh.wait_ready()
        return fresh

    def close(self) -> None:
        """Stop the workers (each exits when its pipe closes); safe to call twice."""
        for w in self._workers:
            w.close()
        atexit.unregister(self.close)

    def pids(self) -> list[int]:
        return [w.proc.pid for w in self._workers]
