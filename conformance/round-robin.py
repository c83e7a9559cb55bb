#!/usr/bin/env python3
"""A TCP relay for the conformance suite: each new connection goes to the next of the given ports on 127.0.0.1, in
turn, so that a test client's connections (an account's second resource, the suite's many accounts) are spread over
the nodes of a cluster, as behind a load balancer. Bytes pass through unchanged (TLS ends at the node).

Usage: round-robin.py LISTEN_PORT PORT [PORT...]   (prints one line once it listens; stop it with SIGTERM)
"""
import asyncio
import itertools
import signal
import sys


async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


async def main():
    listen = int(sys.argv[1])
    ports = [int(p) for p in sys.argv[2:]]
    targets = itertools.cycle(ports)
    counts = dict.fromkeys(ports, 0)

    async def relay(client_reader, client_writer):
        port = next(targets)
        try:
            node_reader, node_writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            client_writer.close()
            return
        counts[port] += 1
        await asyncio.gather(pipe(client_reader, node_writer), pipe(node_reader, client_writer))

    server = await asyncio.start_server(relay, "127.0.0.1", listen)
    print(f"relaying 127.0.0.1:{listen} to ports {' '.join(map(str, ports))} in turn", flush=True)
    loop = asyncio.get_running_loop()
    stop = loop.create_future()
    loop.add_signal_handler(signal.SIGTERM, stop.set_result, None)
    async with server:
        await stop
    print("connections relayed: " + ", ".join(f"{p}: {n}" for p, n in counts.items()), flush=True)


asyncio.run(main())
