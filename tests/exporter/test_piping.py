"""The COPY-to-object-store hand-over keeps every byte, in order, with a bounded queue."""

from __future__ import annotations

import asyncio
import io

from services.exporter.piping import ChunkPipe


async def test_everything_fed_is_read_back_in_order_through_a_small_queue() -> None:
    pipe = ChunkPipe(depth=2)
    chunks = [bytes([i % 251]) * (1000 + i) for i in range(300)]

    async def produce() -> None:
        for chunk in chunks:
            await pipe.feed(chunk)
        await pipe.feed(b"")  # empty chunks are ignored, not taken for the end
        await pipe.finish()

    reader = io.BufferedReader(pipe, buffer_size=4096)
    producing = asyncio.create_task(produce())
    data = await asyncio.get_running_loop().run_in_executor(None, reader.read)
    await producing
    assert data == b"".join(chunks)


async def test_an_empty_stream_reads_as_empty() -> None:
    pipe = ChunkPipe()
    await pipe.finish()
    reader = io.BufferedReader(pipe)
    assert await asyncio.get_running_loop().run_in_executor(None, reader.read) == b""
