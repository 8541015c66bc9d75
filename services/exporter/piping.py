"""A bounded hand-over from an async producer to a blocking reader.

PostgreSQL's COPY output goes into the object store while it is being produced: COPY
hands chunks to ``feed`` on the event loop, and the object store's ``put`` reads them in a
worker thread through ``readinto``. The queue is bounded, so memory stays flat whichever
side is faster.
"""

from __future__ import annotations

import asyncio
import io
import queue

__all__ = ["ChunkPipe"]

_END = b""


class ChunkPipe(io.RawIOBase):
    def __init__(self, depth: int = 16) -> None:
        super().__init__()
        self._chunks: queue.Queue[bytes] = queue.Queue(maxsize=depth)
        self._pending = b""
        self._done = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Called in a worker thread; blocks until data (or the end) arrives."""
        while not self._pending and not self._done:
            chunk = self._chunks.get()
            if chunk is _END:
                self._done = True
            self._pending = chunk
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    async def feed(self, chunk: bytes) -> None:
        """Called on the event loop; waits in a thread when the queue is full."""
        if chunk:
            await asyncio.get_running_loop().run_in_executor(None, self._chunks.put, bytes(chunk))

    async def finish(self) -> None:
        await asyncio.get_running_loop().run_in_executor(None, self._chunks.put, _END)
