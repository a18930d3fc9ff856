#!/usr/bin/env python3
"""Drives a whole live migration between two swiftkvm processes through QMP alone, with
the qemu.qmp client from PyPI (written by QEMU's developers, not by this project).

usage: migrate.py SOURCE_QMP_SOCKET DEST_QMP_SOCKET MIGRATION_URI

The destination must run with `-incoming defer`. Prints one line per step; exits non-zero
with the reason on the first thing that is not as QEMU would have it.
"""
import asyncio
import sys

from qemu.qmp import EventListener, ExecuteError, QMPClient


def check(condition, message):
    if not condition:
        print(f"FAIL: {message}", flush=True)
        sys.exit(1)


async def main(source_path, dest_path, uri):
    source = QMPClient("source")
    dest = QMPClient("dest")
    await source.connect(source_path)
    await dest.connect(dest_path)
    print(f"greeting: {source.greeting}", flush=True)

    status = await dest.execute("query-status")
    check(status["status"] == "inmigrate" and not status["running"], f"destination before: {status}")

    # Errors come back as QMP errors and the connection stays usable.
    try:
        await source.execute("no-such-command")
        check(False, "an unknown command succeeded")
    except ExecuteError as error:
        check(error.error.error.class_ == "CommandNotFound", f"unknown command: {error}")
    try:
        await source.execute("migrate", {"uri": 42})
        check(False, "migrate with a number as uri succeeded")
    except ExecuteError as error:
        check(error.error.error.class_ == "GenericError", f"wrong argument type: {error}")

    await dest.execute("migrate-incoming", {"uri": uri})
    await source.execute("migrate-set-capabilities",
                         {"capabilities": [{"capability": "events", "state": True}]})
    caps = await source.execute("query-migrate-capabilities")
    check({"capability": "events", "state": True} in caps, f"capabilities: {caps}")
    await source.execute("migrate-set-parameters", {"max-bandwidth": 10 << 30, "downtime-limit": 2000})
    params = await source.execute("query-migrate-parameters")
    check(params["downtime-limit"] == 2000 and params["max-bandwidth"] == 10 << 30, f"parameters: {params}")

    statuses = []
    passes = []
    listener = EventListener()
    with source.listen(listener):
        await source.execute("migrate", {"uri": uri})
        print("migrate started", flush=True)
        async for event in listener:
            if event["event"] == "MIGRATION_PASS":
                passes.append(event["data"]["pass"])
            if event["event"] == "MIGRATION":
                statuses.append(event["data"]["status"])
                print(f"MIGRATION {event['data']['status']} at {event['timestamp']}", flush=True)
                if event["data"]["status"] in ("completed", "failed", "cancelled"):
                    break
    check(statuses[-1] == "completed", f"migration ended {statuses}")
    check(statuses[0] == "setup", f"first status {statuses}")
    check(passes and passes[0] == 1, f"MIGRATION_PASS events {passes}")

    info = await source.execute("query-migrate")
    print(f"query-migrate: {info}", flush=True)
    check(info["status"] == "completed" and info["ram"]["transferred"] > 0
          and info["ram"]["page-size"] == 4096 and "downtime" in info, f"query-migrate {info}")

    status = await source.execute("query-status")
    check(status == {"running": False, "singlestep": False, "status": "postmigrate"}, f"source after: {status}")
    for _ in range(100):
        status = await dest.execute("query-status")
        if status["running"]:
            break
        await asyncio.sleep(0.1)
    check(status["status"] == "running", f"destination after: {status}")

    text = await dest.execute("human-monitor-command", {"command-line": "info status"})
    check(text == "VM status: running\n", f"human-monitor-command on the destination: {text!r}")
    await source.execute("quit")
    try:
        await source.disconnect()
    except EOFError:
        pass  # the server hung up first, as QEMU does after quit
    await dest.disconnect()
    print("OK", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
