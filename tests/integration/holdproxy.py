"""A fault-injecting TCP proxy on 127.0.0.1 in front of the real Elasticsearch.

It forwards HTTP/1.1 requests whole (responses are copied back byte for byte) until it
holds: from then on every bulk request is a black hole: the proxy reads it and never
forwards nor answers it, so the client waits for an acknowledgement that does not come,
as when Elasticsearch stalls or the network drops a request. Whatever was forwarded
before the hold is indexed and acknowledged; nothing sent during the hold ever reaches
Elasticsearch. Only fault injection: the server behind it is the real one.
"""
from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit


class HoldProxy:
    """``HoldProxy(es_url, hold_after=n)``: forwards the first ``n`` bulk requests, then
    holds every later one (a count, not a moment: the same point in every run).
    ``forwarded``/``held``: bulk requests forwarded / black-holed so far. Other requests
    are always forwarded."""

    def __init__(self, upstream_url: str, hold_after: int):
        u = urlsplit(upstream_url)
        self.upstream = (u.hostname, u.port or 9200)
        self.hold_after = hold_after
        self.forwarded = 0
        self.held = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._sockets: list[socket.socket] = []
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._closed = True
        for s in [self.server, *self._sockets]:
            try:
                s.close()
            except OSError:
                pass

    # ------------------------------------------------------------------ internals
    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            self._sockets.append(client)
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.upstream, timeout=10)
            upstream.settimeout(None)
        except OSError:
            client.close()
            return
        self._sockets.append(upstream)
        threading.Thread(target=_copy, args=(upstream, client), daemon=True).start()
        buf = b""
        try:
            while True:
                request, buf = _read_request(client, buf)
                if request is None:
                    break
                bulk = b"/_bulk" in request[:request.index(b"\r\n")]
                with self.lock:
                    swallow = bulk and self.forwarded >= self.hold_after
                    if swallow:
                        self.held += 1
                    elif bulk:
                        self.forwarded += 1
                if swallow:  # read what else comes (nothing: the client waits) until EOF
                    while client.recv(65536):
                        pass
                    break
                upstream.sendall(request)
        except OSError:
            pass
        finally:
            for s in (client, upstream):
                try:
                    s.close()
                except OSError:
                    pass


def _read_request(sock: socket.socket, buf: bytes) -> tuple[bytes | None, bytes]:
    """One whole HTTP/1.1 request (headers and Content-Length body) and what follows it;
    None at EOF."""
    while b"\r\n\r\n" not in buf:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    end = buf.index(b"\r\n\r\n") + 4
    length = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            raise AssertionError(f"holdproxy: chunked requests not supported ({value!r})")
    while len(buf) < end + length:
        data = sock.recv(65536)
        if not data:
            return None, buf
        buf += data
    return buf[:end + length], buf[end + length:]


def _copy(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
