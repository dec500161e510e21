"""A minimal PostgreSQL v3 wire client for tests that need what libpq hides.

libpq (and so psycopg and psql) reports a failed login as a message string,
without its SQLSTATE, and cannot send malformed packets. This client speaks
the startup and simple-query subset of the protocol on a raw socket: trust,
cleartext, md5 and SCRAM-SHA-256 logins, ErrorResponse fields, and helpers to
send arbitrary bytes and read until the peer closes.
"""

import base64
import hashlib
import hmac
import os
import socket
import struct
import time

PROTOCOL_3_0 = 196608
SSL_REQUEST_CODE = 80877103       # 1234.5679
GSSENC_REQUEST_CODE = 80877104    # 1234.5680
CANCEL_REQUEST_CODE = 80877102    # 1234.5678


class WireError(Exception):
    """An ErrorResponse from the peer; .fields maps field codes ('C', 'M', ...) to text."""

    def __init__(self, fields):
        self.fields = fields
        super().__init__(f"{fields.get('S', '?')} {fields.get('C', '?')}: {fields.get('M', '')}")

    @property
    def sqlstate(self):
        return self.fields.get("C")

    @property
    def message(self):
        return self.fields.get("M", "")


class ProtocolError(Exception):
    """The peer sent something this client did not expect, or closed early."""


def error_fields(payload):
    """Parses an ErrorResponse/NoticeResponse body into {code: text}."""
    fields = {}
    for part in payload.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
    return fields


def parse_messages(data):
    """Splits bytes into (type, payload) messages; a trailing partial message is returned as ('?', rest)."""
    out = []
    i = 0
    while i < len(data):
        if len(data) - i < 5:
            out.append(("?", data[i:]))
            break
        kind = chr(data[i])
        (n,) = struct.unpack("!I", data[i + 1:i + 5])
        if n < 4 or len(data) - i - 1 < n:
            out.append(("?", data[i:]))
            break
        out.append((kind, data[i + 5:i + 1 + n]))
        i += 1 + n
    return out


def read_until_close(sock, timeout):
    """Reads until EOF or reset. Returns (bytes, closed); closed is False if timeout passed first."""
    deadline = time.monotonic() + timeout
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return b"".join(chunks), False
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return b"".join(chunks), False
        except (ConnectionResetError, BrokenPipeError):
            return b"".join(chunks), True
        if not data:
            return b"".join(chunks), True
        chunks.append(data)


def open_socket(host, port, timeout=10):
    s = socket.create_connection((host, port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def startup_packet(params, version=PROTOCOL_3_0):
    body = struct.pack("!I", version)
    for k, v in params.items():
        body += k.encode() + b"\0" + v.encode() + b"\0"
    body += b"\0"
    return struct.pack("!I", len(body) + 4) + body


def request_packet(code):
    """SSLRequest, GSSENCRequest or any other 8-byte special request."""
    return struct.pack("!II", 8, code)


def _msg(kind, payload):
    return kind + struct.pack("!I", len(payload) + 4) + payload


class Conn:
    """A logged-in connection. Use query() for simple queries, close() when done."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = b""
        self.params = {}
        self.backend_key = None
        self.auth_methods = []   # the AuthenticationRequest codes seen at login

    def _recv_message(self):
        while True:
            if len(self.buf) >= 5:
                (n,) = struct.unpack("!I", self.buf[1:5])
                if n < 4:
                    raise ProtocolError(f"bad message length {n}")
                if len(self.buf) >= 1 + n:
                    kind = chr(self.buf[0])
                    payload = self.buf[5:1 + n]
                    self.buf = self.buf[1 + n:]
                    return kind, payload
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError as e:
                raise ProtocolError("connection reset") from e
            if not data:
                raise ProtocolError("connection closed by peer")
            self.buf += data

    def _recv_byte(self):
        while not self.buf:
            data = self.sock.recv(1)
            if not data:
                raise ProtocolError("connection closed by peer")
            self.buf += data
        b, self.buf = self.buf[:1], self.buf[1:]
        return b

    def _login(self, user, password):
        scram = None
        while True:
            kind, payload = self._recv_message()
            if kind == "E":
                raise WireError(error_fields(payload))
            if kind == "R":
                (code,) = struct.unpack("!I", payload[:4])
                self.auth_methods.append(code)
                if code == 0:
                    continue
                if password is None:
                    raise ProtocolError(f"server asks for a password (auth request {code}) and none was given")
                if code == 3:
                    self.sock.sendall(_msg(b"p", password.encode() + b"\0"))
                elif code == 5:
                    salt = payload[4:8]
                    inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                    outer = "md5" + hashlib.md5(inner + salt).hexdigest()
                    self.sock.sendall(_msg(b"p", outer.encode() + b"\0"))
                elif code == 10:
                    mechs = [m.decode() for m in payload[4:].split(b"\0") if m]
                    if "SCRAM-SHA-256" not in mechs:
                        raise ProtocolError(f"no SCRAM-SHA-256 among {mechs}")
                    scram = _Scram(password)
                    first = scram.client_first().encode()
                    body = b"SCRAM-SHA-256\0" + struct.pack("!i", len(first)) + first
                    self.sock.sendall(_msg(b"p", body))
                elif code == 11:
                    final = scram.client_final(payload[4:].decode()).encode()
                    self.sock.sendall(_msg(b"p", final))
                elif code == 12:
                    scram.verify_server_final(payload[4:].decode())
                else:
                    raise ProtocolError(f"unsupported auth request {code}")
            elif kind == "S":
                k, v, _ = payload.split(b"\0", 2)
                self.params[k.decode()] = v.decode()
            elif kind == "K":
                self.backend_key = struct.unpack("!II", payload[:8])
            elif kind == "N":
                pass
            elif kind == "v":   # NegotiateProtocolVersion
                pass
            elif kind == "Z":
                return
            else:
                raise ProtocolError(f"unexpected message {kind!r} during login")

    def query(self, sql):
        """Runs a simple query. Returns a list of row lists (one per result set, values as str or None).

        Raises WireError on an ErrorResponse, after reading up to ReadyForQuery.
        """
        self.sock.sendall(_msg(b"Q", sql.encode() + b"\0"))
        results, rows, error = [], None, None
        while True:
            try:
                kind, payload = self._recv_message()
            except ProtocolError:
                # A FATAL error is followed by the close, not by ReadyForQuery.
                if error:
                    raise error
                raise
            if kind == "T":
                rows = []
            elif kind == "D":
                (n,) = struct.unpack("!H", payload[:2])
                i, row = 2, []
                for _ in range(n):
                    (ln,) = struct.unpack("!i", payload[i:i + 4])
                    i += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(payload[i:i + ln].decode())
                        i += ln
                rows.append(row)
            elif kind == "C":
                results.append(rows if rows is not None else [])
                rows = None
            elif kind == "E":
                error = WireError(error_fields(payload))
            elif kind == "Z":
                self.status = payload[:1].decode()
                if error:
                    raise error
                return results
            # I (empty query), N (notice), S (parameter status): nothing to keep

    def send_raw(self, *messages):
        """Sends (kind, payload) messages in one write: a pipeline."""
        self.sock.sendall(b"".join(_msg(kind, payload) for kind, payload in messages))

    def read_until_ready(self):
        """The (kind, payload) messages up to and including the next ReadyForQuery."""
        out = []
        while True:
            kind, payload = self._recv_message()
            out.append((kind, payload))
            if kind == "Z":
                self.status = payload[:1].decode()
                return out

    def close(self):
        try:
            self.sock.sendall(_msg(b"X", b""))
        except OSError:
            pass
        self.sock.close()


class _Scram:
    def __init__(self, password):
        self.password = password.encode()
        self.nonce = base64.b64encode(os.urandom(18)).decode()
        self.first_bare = "n=,r=" + self.nonce

    def client_first(self):
        return "n,," + self.first_bare

    def client_final(self, server_first):
        attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
        if not attrs["r"].startswith(self.nonce):
            raise ProtocolError("SCRAM server nonce does not extend ours")
        salt = base64.b64decode(attrs["s"])
        iterations = int(attrs["i"])
        salted = hashlib.pbkdf2_hmac("sha256", self.password, salt, iterations)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored_key = hashlib.sha256(client_key).digest()
        without_proof = "c=biws,r=" + attrs["r"]
        self.auth_message = f"{self.first_bare},{server_first},{without_proof}".encode()
        signature = hmac.new(stored_key, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, signature))
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        return without_proof + ",p=" + base64.b64encode(proof).decode()

    def verify_server_final(self, server_final):
        attrs = dict(kv.split("=", 1) for kv in server_final.split(","))
        expected = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        if base64.b64decode(attrs.get("v", "")) != expected:
            raise ProtocolError("SCRAM server signature does not match")


def connect(host, port, user, database, password=None, timeout=10, ssl_request=False,
            gssenc_request=False, extra=None):
    """Logs in. Returns a Conn, or raises WireError (the peer's ErrorResponse) or ProtocolError.

    With ssl_request/gssenc_request the matching request is sent first and the
    answer byte is stored in conn.encryption_answer ('N' expected: no TLS/GSS).
    """
    sock = open_socket(host, port, timeout)
    conn = Conn(sock)
    try:
        conn.encryption_answer = None
        for flag, code in ((gssenc_request, GSSENC_REQUEST_CODE), (ssl_request, SSL_REQUEST_CODE)):
            if flag:
                sock.sendall(request_packet(code))
                answer = conn._recv_byte()
                conn.encryption_answer = answer.decode("latin-1")
                if answer == b"E":
                    # An old-style refusal: an ErrorResponse follows the 'E'.
                    conn.buf = b"E" + conn.buf
                    kind, payload = conn._recv_message()
                    raise WireError(error_fields(payload))
                if answer != b"N":
                    raise ProtocolError(f"answer {answer!r} to an encryption request; a plain connection was wanted")
        params = {"user": user, "database": database}
        params.update(extra or {})
        sock.sendall(startup_packet(params))
        conn._login(user, password)
        return conn
    except BaseException:
        sock.close()
        raise


def login_error(host, port, user, database, password=None, timeout=10):
    """Tries to log in and run 'select 1'. Returns the WireError raised, or None if both worked.

    A pooler may report a problem at login or only at the first query (when it
    needs a server); both count.
    """
    try:
        conn = connect(host, port, user, database, password, timeout=timeout)
    except WireError as e:
        return e
    try:
        conn.query("select 1")
    except WireError as e:
        return e
    finally:
        conn.close()
    return None


# Extended-protocol messages for send_raw: text parameters, text results.
def parse(name, sql):
    return b"P", name.encode() + b"\0" + sql.encode() + b"\0" + struct.pack("!H", 0)


def bind(portal, statement, params=()):
    body = portal.encode() + b"\0" + statement.encode() + b"\0" + struct.pack("!HH", 0, len(params))
    for v in params:
        b = str(v).encode()
        body += struct.pack("!i", len(b)) + b
    return b"B", body + struct.pack("!H", 0)


def describe(kind, name):
    return b"D", kind.encode() + name.encode() + b"\0"


def execute(portal="", max_rows=0):
    return b"E", portal.encode() + b"\0" + struct.pack("!i", max_rows)


def close_stmt(name):
    return b"C", b"S" + name.encode() + b"\0"


def sync():
    return b"S", b""


def data_values(payload):
    """The text values of a DataRow."""
    (n,) = struct.unpack("!H", payload[:2])
    i, out = 2, []
    for _ in range(n):
        (ln,) = struct.unpack("!i", payload[i:i + 4])
        i += 4
        out.append(None if ln < 0 else payload[i:i + ln].decode())
        i += max(ln, 0)
    return out
