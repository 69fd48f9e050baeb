"""Reading file locations on another core while the caller writes the previous one.

Model: :class:`ReadAhead` owns at most one helper process, started on the first
:meth:`ReadAhead.submit` as ``python -c`` importing only this engine (not the web application,
and never the caller's ``__main__``, which ``multiprocessing``'s spawn would re-run). Requests and
answers are length-prefixed pickles over the helper's stdin/stdout, served in order. Each
request reads, parses, validates and prepares one *file* location (:func:`read_and_prepare`).
Ingesting a tree is parse-bound on one side and write-bound on the other, so with two cores the
writer rarely waits: while it writes file *k*, the helper parses file *k+1*.

Invariants: an answer is what reading the location in the caller gives (same function, same
arguments); nothing here touches the database, so leases stay with the caller, which claims a
location before using its read-ahead and drops it when the claim fails. URL locations are never
sent (their reader may be in-process, e.g. the portal's own git host).

Failure behaviour: if the helper cannot start, dies or answers with an error,
:meth:`ReadAhead.result` returns None and the caller reads the location itself. Until the helper
has answered once (a new interpreter takes a few hundred ms to start), the caller does not wait
for it either. :meth:`ReadAhead.close` ends the helper and frees its memory.
"""

from __future__ import annotations

import logging
import os
import pickle
import struct
import subprocess
import sys
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import IO, Any, Self

from greenroom.catalog.model import LocationSpec, ReadPolicy

from .processing import process_location
from .rows import PreparedResult, prepare

log = logging.getLogger("greenroom.catalog.engine")

_HEADER = struct.Struct("!Q")


def read_and_prepare(location: LocationSpec, origin: LocationSpec, policy: ReadPolicy, root: str | None,
                     allowed_kinds: set[str] | None) -> PreparedResult:
    """Read one file location and prepare its entities for writing (runs in the helper)."""
    result = process_location(location, origin=origin, policy=policy, root=root, allowed_kinds=allowed_kinds)
    return prepare(result, location)


def _write(stream: IO[bytes], obj: Any) -> None:
    data = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_HEADER.pack(len(data)) + data)
    stream.flush()


def _read(stream: IO[bytes]) -> Any:
    header = stream.read(_HEADER.size)
    if len(header) < _HEADER.size:
        raise EOFError
    size = _HEADER.unpack(header)[0]
    data = stream.read(size)
    if len(data) < size:
        raise EOFError
    return pickle.loads(data)


def serve() -> None:
    """The helper's loop: answer ``(id, args)`` with ``(id, True, result)`` or ``(id, False, error)``
    until stdin closes."""
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing but answers on the pipe
    while True:
        try:
            request_id, args = _read(stdin)
        except EOFError:
            return
        answer: tuple[int, bool, Any]
        try:
            answer = (request_id, True, read_and_prepare(*args))
        except Exception as e:  # noqa: BLE001 - the engine promises data; the caller reads it again
            answer = (request_id, False, f"{type(e).__name__}: {e}")
        _write(stdout, answer)


class _Helper:
    def __init__(self) -> None:
        import greenroom

        src = str(Path(greenroom.__file__).resolve().parents[1])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)}
        self.proc = subprocess.Popen(
            [sys.executable, "-c", "from greenroom.catalog.engine.parallel import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env, close_fds=True)
        self.pending: dict[int, Future[PreparedResult]] = {}
        self.lock = threading.Lock()
        self.answered = False
        self.next_id = 0
        self.reader = threading.Thread(target=self._receive, name="catalog-read-ahead", daemon=True)
        self.reader.start()

    def submit(self, args: tuple[Any, ...]) -> Future[PreparedResult]:
        future: Future[PreparedResult] = Future()
        with self.lock:
            self.next_id += 1
            request_id = self.next_id
            self.pending[request_id] = future
        assert self.proc.stdin is not None
        _write(self.proc.stdin, (request_id, args))
        return future

    def _receive(self) -> None:
        assert self.proc.stdout is not None
        try:
            while True:
                request_id, ok, value = _read(self.proc.stdout)
                self.answered = True
                with self.lock:
                    future = self.pending.pop(request_id, None)
                if future is None:
                    continue
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(RuntimeError(value))
        except (EOFError, OSError, pickle.UnpicklingError):
            pass
        with self.lock:
            pending, self.pending = self.pending, {}
        for future in pending.values():
            future.set_exception(EOFError("the read-ahead helper stopped"))

    def close(self) -> None:
        """Stop the helper without waiting for it: it exits when its stdin closes (at once, if
        reads nobody will use are still queued); a daemon thread reaps it."""
        with self.lock:
            busy = bool(self.pending)
        if busy:
            self.proc.kill()
        try:
            if self.proc.stdin is not None:
                self.proc.stdin.close()
        except OSError:
            pass
        threading.Thread(target=self._reap, name="catalog-read-ahead-reaper", daemon=True).start()

    def _reap(self) -> None:
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=5)


class ReadAhead:
    """Futures of prepared file locations, keyed by location id, computed in a helper process."""

    def __init__(self) -> None:
        self._helper: _Helper | None = None
        self._futures: dict[str, tuple[LocationSpec, Future[PreparedResult]]] = {}

    def submit(self, location_id: str, location: LocationSpec, origin: LocationSpec, policy: ReadPolicy,
               root: str | None, allowed_kinds: set[str] | None) -> None:
        """Start reading ``location`` (a file) in the helper; no-op for URLs or if already sent."""
        if location.type != "file" or location_id in self._futures:
            return
        try:
            if self._helper is None:
                self._helper = _Helper()
            future = self._helper.submit((location, origin, policy, root, allowed_kinds))
        except (OSError, pickle.PicklingError):
            log.warning("catalog.read_ahead_unavailable", exc_info=True)
            self.close()
            return
        self._futures[location_id] = (location, future)

    def result(self, location_id: str, location: LocationSpec) -> PreparedResult | None:
        """The prepared read of ``location_id`` if one was submitted for this same target; None
        otherwise, while the helper is still starting, or if it failed (read it in the caller)."""
        entry = self._futures.pop(location_id, None)
        if entry is None or entry[0] != location or self._helper is None:
            return None
        if not self._helper.answered and not entry[1].done():
            return None
        try:
            return entry[1].result()
        except Exception as e:  # noqa: BLE001 - the helper died or failed: read it in the caller
            log.warning("catalog.read_ahead_failed: %s", e)
            return None

    def discard(self, location_id: str) -> None:
        self._futures.pop(location_id, None)

    def close(self) -> None:
        helper, self._helper = self._helper, None
        self._futures.clear()
        if helper is not None:
            helper.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
