#!/usr/bin/env python3
"""A TCP forwarder that adds a fixed delay to each direction, for scripts/bench.

    latency_proxy.py --listen 127.0.0.1:0 --target 127.0.0.1:PORT [--delay-ms 10]

Prints `127.0.0.1:PORT` (the address it listens on) as its first line once it accepts
connections. Every chunk read from one side is written to the other side `--delay-ms` after it
was read, so a round trip costs twice the delay while bandwidth is not capped by the delay (the
chunks of one direction are pipelined through a bounded queue, as on a long fat link). A new
connection also pays the TCP handshake a real link would cost: its first bytes reach the target
no earlier than 3 x delay after the accept (one round trip to connect, one delay to arrive).
TLS is not modelled (it would add one or two more round trips per new connection). Only
loopback addresses are accepted, on both sides. SIGTERM/SIGINT stop it.
"""

import argparse
import asyncio
import ipaddress
import signal
import sys

CHUNK = 256 * 1024
# Bytes in flight per direction; at 10 ms this allows ~6 GB/s, beyond what loopback gives here.
QUEUE_CHUNKS = 256


def loopback(addr: str) -> tuple[str, int]:
    host, _, port = addr.rpartition(":")
    if not ipaddress.ip_address(host).is_loopback:
        sys.exit(f"latency_proxy: {host} is not a loopback address")
    return host, int(port)


async def pump(reader, writer, delay, not_before=0.0):
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue(QUEUE_CHUNKS)

    async def receive():
        try:
            while True:
                data = await reader.read(CHUNK)
                await queue.put((max(loop.time() + delay, not_before), data))
                if not data:
                    return
        except (ConnectionError, OSError):
            await queue.put((loop.time(), b""))

    async def send():
        try:
            while True:
                due, data = await queue.get()
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                if not data:
                    if writer.can_write_eof():
                        writer.write_eof()
                    return
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            return

    await asyncio.gather(receive(), send())


async def serve_client(client_reader, client_writer, target, delay):
    handshake_done = asyncio.get_running_loop().time() + 3 * delay
    try:
        server_reader, server_writer = await asyncio.open_connection(*target, limit=4 * CHUNK)
    except OSError:
        client_writer.close()
        return
    try:
        await asyncio.gather(
            pump(client_reader, server_writer, delay, handshake_done),
            pump(server_reader, client_writer, delay),
        )
    finally:
        for w in (server_writer, client_writer):
            try:
                w.close()
            except Exception:
                pass


async def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--target", required=True)
    ap.add_argument("--delay-ms", type=float, default=10.0)
    args = ap.parse_args()
    listen = loopback(args.listen)
    target = loopback(args.target)
    delay = args.delay_ms / 1000.0
    # Connections are our own tasks, held until they end (asyncio keeps only weak references).
    tasks = set()

    def accept(reader, writer):
        task = asyncio.get_running_loop().create_task(serve_client(reader, writer, target, delay))
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    server = await asyncio.start_server(accept, *listen, limit=4 * CHUNK)
    host, port = server.sockets[0].getsockname()[:2]
    print(f"{host}:{port}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    async with server:
        await stop.wait()
        for task in list(tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


if __name__ == "__main__":
    asyncio.run(main())
