"""`python -m tests.fakes NAME [--port N]`: run one fake by hand until Ctrl-C.

Prints the URL and the settings to configure on stdout (FCM also writes its service-account
JSON to a file and prints the path), and one line per request on stderr (method, path,
status; never headers or bodies, which carry tokens and addresses). No request log is kept in
memory; dedupe stores, tokens and tickets are.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import tempfile
import threading

from . import FAKES
from .fcm import FcmFake


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.fakes", description=__doc__)
    parser.add_argument("name", choices=sorted(FAKES))
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument(
        "--service-account",
        metavar="FILE",
        help="FCM: where to write the service-account JSON (default: a temporary file)",
    )
    args = parser.parse_args(argv)
    # nobody can read an in-memory log here: keep none, so a long benchmark run stays small
    fake = FAKES[args.name](port=args.port, log_stream=sys.stderr, keep_log=False)
    fake.start()
    creds = dict(fake.credentials())
    if isinstance(fake, FcmFake):
        path = args.service_account
        if path is None:
            fd, path = tempfile.mkstemp(prefix="mcrm-fake-sa-", suffix=".json")
            os.close(fd)
        fake.write_service_account(path)
        creds["service_account_file"] = str(path)
    print(f"{args.name} fake listening on {fake.url}", flush=True)
    print(json.dumps(creds, indent=2), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        done.wait()
    except KeyboardInterrupt:
        pass
    finally:
        fake.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
