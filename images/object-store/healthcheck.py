"""Exit 0 when the S3 API answers on :8333 (the object store's health check).

An unsigned request is refused (403 AccessDenied) by an S3 that enforces its keys: any
HTTP answer that is an S3 XML document proves the gateway is up and serving.  A refused
connection, a timeout or an answer that is not S3's exits 1.
"""

import sys
import urllib.error
import urllib.request

URL = "http://127.0.0.1:8333/"


def main() -> int:
    """Probe the S3 API once; return the exit status."""
    try:
        with urllib.request.urlopen(URL, timeout=4) as response:
            status, body = response.status, response.read(4096)
    except urllib.error.HTTPError as exc:
        status, body = exc.code, exc.read(4096)
    except OSError as exc:  # refused, reset, timed out
        print(f"S3 API not answering at {URL}: {exc}", file=sys.stderr)
        return 1
    if status < 500 and (b"<Error" in body or b"<ListAllMyBucketsResult" in body):
        return 0
    print(f"not an S3 answer from {URL}: HTTP {status} {body[:200]!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
