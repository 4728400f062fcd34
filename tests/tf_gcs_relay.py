"""TensorFlow's own gs:// file system, pointed at the GCS emulator (tests only).

TensorFlow's GCS client (in libtensorflow_framework, used by `tf.io.gfile`, summary
writers and TensorBoard's Python loader) has no endpoint setting: it always calls
`https://www.googleapis.com/storage/v1/...`, `https://www.googleapis.com/upload/...` and
`https://storage.googleapis.com/<bucket>/<object>`. It does honour three things of its
environment, read at each request:

* `HTTPS_PROXY` (libcurl): every request goes through an HTTP CONNECT proxy;
* `CURL_CA_BUNDLE`: the certificate authorities it trusts;
* `GOOGLE_AUTH_TOKEN_FOR_TESTING`: a bearer token used as is (no OAuth call).

`TfGcsRelay` is such a proxy on 127.0.0.1: it accepts CONNECT for the two Google hosts
only, answers TLS with a certificate for them signed by a throwaway authority of its
own (the bundle `CURL_CA_BUNDLE` names), and forwards each request, unchanged but for
the scheme, to the emulator over plain HTTP. The emulator serves both hosts' paths. A
resumable upload's `Location` (the emulator writes `http://`) is given back as
`https://` so the client sends the upload's data through the relay too.

Nothing is changed in TensorFlow or TensorBoard: what reads the bucket is the same code
that reads a real one. What the relay cannot show: real TLS to Google, real credentials
(the service account's OAuth token or the metadata server), and GCS's own consistency
and latency. Requests to any other host are refused (so nothing leaves this machine).

    with TfGcsRelay(emulator.url) as relay, relay.environment():
        tf.io.gfile.listdir("gs://bucket/run")
"""

from __future__ import annotations

import contextlib
import datetime
import http.client
import http.server
import json
import os
import socketserver
import ssl
import tempfile
import threading
import urllib.parse
from typing import Dict, Iterator, List

GOOGLE_STORAGE_HOSTS = ("www.googleapis.com", "storage.googleapis.com")

# Headers that belong to one connection, not to the request (RFC 9110, 7.6.1).
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authorization",
               "te", "trailer", "transfer-encoding", "upgrade"}


def _write_certificates(folder: str, hosts=GOOGLE_STORAGE_HOSTS) -> Dict[str, str]:
    """A throwaway certificate authority and a server certificate for `hosts`.

    Returns the paths: {"ca": authority (PEM), "cert": server chain (PEM), "key": its key}.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    not_before, not_after = now - datetime.timedelta(days=1), now + datetime.timedelta(days=2)

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ddsp-pipeline test relay CA")])
    ca_cert = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
        .issuer_name(ca_name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before).not_valid_after(not_after)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in hosts]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                       critical=False)
        .sign(ca_key, hashes.SHA256())
    )

    pem = serialization.Encoding.PEM
    paths = {name: os.path.join(folder, f"{name}.pem") for name in ("ca", "cert", "key")}
    with open(paths["ca"], "wb") as f:
        f.write(ca_cert.public_bytes(pem))
    with open(paths["cert"], "wb") as f:
        f.write(cert.public_bytes(pem) + ca_cert.public_bytes(pem))
    with open(paths["key"], "wb") as f:
        f.write(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    return paths


def _as_the_emulator_takes_it(method, path, body, headers):
    """The request, rewritten where the emulator cannot take what GCS takes.

    One case: an empty simple upload (`uploadType=media`, no body), which TensorFlow sends
    to mark a folder (`gs://b/dir/`); gcp-storage-emulator fails on its missing body. It is
    sent as the equivalent multipart upload (metadata naming the object, empty content).
    Returns (path, body, headers).
    """
    parts = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parts.query)
    if method != "POST" or body or query.get("uploadType") != ["media"] or "name" not in query:
        return path, body, headers
    boundary = "tf-gcs-relay-boundary"
    metadata = json.dumps({"name": query["name"][0]})
    body = (f"--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{metadata}\r\n"
            f"--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n\r\n"
            f"--{boundary}--\r\n").encode()
    query["uploadType"] = ["multipart"]
    headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    headers["Content-Type"] = f"multipart/related; boundary={boundary}"
    path = urllib.parse.urlunsplit(parts._replace(query=urllib.parse.urlencode(query, doseq=True)))
    return path, body, headers


class _ForwardingHandler(http.server.BaseHTTPRequestHandler):
    """Requests inside a CONNECT tunnel, after TLS: each one is sent to the emulator."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - the base class's name
        self.server.relay.log.append(f"{self.command} {self.path} -> {format % args}")

    def _forward(self):
        relay = self.server.relay
        body = self._read_body()
        # `Expect: 100-continue` was answered here already (the body is read); not passed on.
        headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"expect"}}
        path, body, headers = _as_the_emulator_takes_it(self.command, self.path, body, headers)
        headers["Content-Length"] = str(len(body))
        connection = http.client.HTTPConnection(relay.emulator_host, relay.emulator_port, timeout=60)
        try:
            connection.request(self.command, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
            self.send_response(response.status, response.reason)
            for name, value in response.getheaders():
                if name.lower() in _HOP_BY_HOP or name.lower() == "content-length":
                    continue
                if name.lower() == "location" and value.startswith("http://"):
                    value = "https://" + value[len("http://"):]
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)
        finally:
            connection.close()

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _forward


class _TunnelServer:
    """What `_ForwardingHandler` expects of its server (the handler runs inside a tunnel)."""

    def __init__(self, relay: "TfGcsRelay"):
        self.relay = relay
        self.server_address = ("127.0.0.1", relay.port)


class _ConnectHandler(http.server.BaseHTTPRequestHandler):
    """The proxy itself: CONNECT to a Google storage host, then TLS, then forwarding."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002
        self.server.relay.log.append(format % args)

    def do_CONNECT(self):
        relay = self.server.relay
        host, _, port = self.path.partition(":")
        if host not in GOOGLE_STORAGE_HOSTS or port != "443":
            self.send_error(403, f"the test relay only forwards {', '.join(GOOGLE_STORAGE_HOSTS)}:443")
            return
        self.send_response(200, "Connection established")
        self.end_headers()
        self.wfile.flush()
        try:
            tunnel = relay.tls_context.wrap_socket(self.connection, server_side=True)
        except (ssl.SSLError, OSError) as error:
            relay.log.append(f"TLS handshake for {host} failed: {error}")
            self.close_connection = True
            return
        _ForwardingHandler(tunnel, self.client_address, _TunnelServer(relay))
        self.close_connection = True

    def _refuse(self):
        self.send_error(403, "the test relay forwards CONNECT tunnels only")

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _refuse


class _ThreadingProxy(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


class TfGcsRelay:
    """An HTTPS CONNECT proxy on 127.0.0.1 that sends Google storage requests to an emulator.

    Args:
        emulator_url: The emulator's plain-HTTP address, e.g. "http://127.0.0.1:9023".

    Attributes after `start()`: `port`, `proxy_url`, `ca_bundle` (the authority's PEM file),
    `log` (one line per tunnel and request, for failure messages).
    """

    def __init__(self, emulator_url: str):
        host_port = emulator_url.split("://", 1)[-1].rstrip("/")
        self.emulator_host, _, port = host_port.partition(":")
        self.emulator_port = int(port or 80)
        self.log: List[str] = []
        self.port = None
        self._folder = None
        self._server = None
        self._thread = None

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "TfGcsRelay":
        self._folder = tempfile.mkdtemp(prefix="tf-gcs-relay-")
        paths = _write_certificates(self._folder)
        self.ca_bundle = paths["ca"]
        self.tls_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.tls_context.load_cert_chain(paths["cert"], paths["key"])
        self._server = _ThreadingProxy(("127.0.0.1", 0), _ConnectHandler)
        self._server.relay = self
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, name="tf-gcs-relay",
                                        daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._folder:
            import shutil

            shutil.rmtree(self._folder, ignore_errors=True)
            self._folder = None

    def __enter__(self) -> "TfGcsRelay":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def environment_variables(self) -> Dict[str, str]:
        """What TensorFlow's GCS client (and libcurl) must see to use this relay."""
        return {
            "HTTPS_PROXY": self.proxy_url,
            "https_proxy": self.proxy_url,
            "CURL_CA_BUNDLE": self.ca_bundle,
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "relay-test-token",
            "NO_GCE_CHECK": "True",
            # Fail in seconds, not minutes, when a request cannot be served (read when
            # TensorFlow first touches gs:// in a process).
            "GCS_RETRY_CONFIG_MAX_RETRIES": "2",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
        }

    @contextlib.contextmanager
    def environment(self) -> Iterator[Dict[str, str]]:
        """Sets `environment_variables()` in this process (and its children) while inside."""
        saved = {key: os.environ.get(key) for key in self.environment_variables()}
        os.environ.update(self.environment_variables())
        try:
            yield dict(os.environ)
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
