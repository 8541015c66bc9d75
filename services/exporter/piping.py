"""A bounded hand-over from an async producer to a blocking reader.

PostgreSQL's COPY output goes into the object store while it is being produced: COPY
hands chunks to ``feed`` on the event loop, and the object store's ``put`` reads them in a
worker thread through ``readinto``. The queue is bounded, so memory stays flat whichever
side is faster.

COPY's chunks are small (often a few KiB), so ``feed`` gathers them into pieces of about
``piece_size`` bytes first: one queue hand-over, and no thread hop, per piece rather than
per chunk.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import queue

__all__ = ["ChunkPipe"]

_END = b""


class ChunkPipe(io.RawIOBase):
    def __init__(self, depth: int = 4, piece_size: int = 1 << 20) -> None:
        super().__init__()
        self._pieces: queue.Queue[bytes | bytearray] = queue.Queue(maxsize=depth)
        self._piece_size = piece_size
        self._gathered = bytearray()
        self._pending = memoryview(b"")
        self._done = False
        self._discarded = False

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        """Called in a worker thread; blocks until ``buffer`` is full or the end arrives,
        so each object-store chunk is a full one."""
        size = 0
        while size < len(buffer):
            if not self._pending:
                if self._done:
                    break
                piece = self._pieces.get()
                self._done = piece is _END
                self._pending = memoryview(piece)
                continue
            n = min(len(buffer) - size, len(self._pending))
            buffer[size : size + n] = self._pending[:n]
            self._pending = self._pending[n:]  # a view: no copy of the rest
            size += n
        return size

    async def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        """Called on the event loop; waits in a thread only when the queue is full."""
        self._gathered += chunk
        if len(self._gathered) >= self._piece_size:
            piece, self._gathered = self._gathered, bytearray()
            await self._hand_over(piece)

    async def finish(self) -> None:
        if self._gathered:
            piece, self._gathered = self._gathered, bytearray()
            await self._hand_over(piece)
        await self._hand_over(_END)

    def discard(self) -> None:
        """The run gave up: drop what is queued and end the stream, so neither a hand-over
        nor a read blocked in a worker thread waits forever."""
        self._discarded = True
        with contextlib.suppress(queue.Empty):
            while True:
                self._pieces.get_nowait()
        with contextlib.suppress(queue.Full):
            self._pieces.put_nowait(_END)

    async def _hand_over(self, piece: bytes | bytearray) -> None:
        if self._discarded:
            return
        try:
            self._pieces.put_nowait(piece)
        except queue.Full:
            await asyncio.get_running_loop().run_in_executor(None, self._pieces.put, piece)
