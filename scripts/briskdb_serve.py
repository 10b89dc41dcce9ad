#!/usr/bin/env python3
"""Serve a briskdb database over the MongoDB wire protocol, for the store's contract tests.

Usage: scripts/briskdb_serve.py DIR PORT

briskdb (`pip install briskdb==0.1.0b3`) is a MongoDB-wire-compatible stand-in: no
MongoDB server can be installed on our CI machines. It serves until the process is
stopped. Test URI: mongodb://127.0.0.1:PORT/tete_test?directConnection=true&maxPoolSize=4
"""

import signal
import sys
import threading

import briskdb


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: briskdb_serve.py DIR PORT", file=sys.stderr)
        return 2
    directory, port = sys.argv[1], int(sys.argv[2])
    db = briskdb.open(directory, shards=4, documents=True)
    server = db.serve(mongo=f"127.0.0.1:{port}", admin=None)
    print(f"briskdb serving MongoDB wire protocol on 127.0.0.1:{port}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    stop.wait()
    del server
    return 0


if __name__ == "__main__":
    sys.exit(main())
