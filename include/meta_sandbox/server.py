"""HTTP/1.1 front end: stdlib ``ThreadingHTTPServer`` with keep-alive, one thread per connection.

Each response (status line, headers, body) is written with a single send and ``TCP_NODELAY`` is
set, so keep-alive clients never wait on Nagle/delayed-ACK stalls. Dropped-connection faults close
the socket without writing anything.
"""

from __future__ import annotations

import contextlib
import http.server
import socket
import sys
import urllib.parse

from meta_sandbox.app import Request, Sandbox

_REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 500: "Internal Server Error"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "meta-sandbox"
    sys_version = ""
    sandbox: Sandbox  # set on the subclass made by make_server

    def setup(self):
        super().setup()
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format, *args):
        if self.sandbox.options.verbose:
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def _params(self, body: bytes) -> tuple[str, dict]:
        parsed = urllib.parse.urlsplit(self.path)
        params = dict(urllib.parse.parse_qsl(parsed.query, keep_blank_values=True))
        ctype = (self.headers.get("Content-Type") or "").lower()
        if body and "application/x-www-form-urlencoded" in ctype:
            params.update(urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        elif body and "multipart/form-data" in ctype:
            params.update(_multipart(body, ctype))
        elif body and "json" in ctype and not parsed.path.startswith("/_sandbox"):
            try:
                import json

                data = json.loads(body)
                if isinstance(data, dict):
                    params.update({k: v if isinstance(v, str) else json.dumps(v) for k, v in data.items()})
            except ValueError:
                pass
        return parsed.path, params

    def _dispatch(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
            self.close_connection = True
        body = self.rfile.read(length) if length > 0 else b""
        path, params = self._params(body)
        host = self.headers.get("Host") or f"{self.server.server_address[0]}:{self.server.server_address[1]}"
        req = Request(self.command, path, params, dict(self.headers.items()), f"http://{host}", body)
        resp = self.sandbox.handle(req)
        if resp.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        head = [
            f"HTTP/1.1 {resp.status} {_REASONS.get(resp.status, 'OK')}",
            f"Content-Type: {resp.content_type}",
            f"Content-Length: {len(resp.body)}",
        ]
        head.extend(f"{k}: {v}" for k, v in resp.headers.items())
        if self.close_connection or (self.headers.get("Connection", "").lower() == "close"):
            head.append("Connection: close")
            self.close_connection = True
        else:
            head.append("Connection: keep-alive")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1", "replace") + resp.body
        try:
            self.wfile.write(data)
        except OSError:
            self.close_connection = True

    do_GET = _dispatch
    do_POST = _dispatch
    do_DELETE = _dispatch
    do_PUT = _dispatch

    def finish(self):
        with contextlib.suppress(OSError):
            super().finish()


def _multipart(body: bytes, ctype: str) -> dict:
    """Minimal multipart/form-data parsing (form fields only; files are ignored)."""
    import email.parser
    import email.policy

    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + ctype.encode() + b"\r\n\r\n" + body
    )
    out = {}
    for part in msg.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if name and not part.get_filename():
            out[name] = (
                part.get_content()
                if isinstance(part.get_content(), str)
                else part.get_payload(decode=True).decode()
            )
    return out


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def make_server(sandbox: Sandbox, host: str, port: int) -> Server:
    handler = type("BoundHandler", (Handler,), {"sandbox": sandbox})
    server = Server((host, port), handler)
    sandbox.server = server
    return server
