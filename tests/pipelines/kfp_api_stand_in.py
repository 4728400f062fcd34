"""A STAND-IN for the Kubeflow Pipelines REST API, for `ddsp_pipeline submit --kfp-host` tests.

It is not the real backend (that needs a Kubernetes cluster): a small http.server on 127.0.0.1,
in a thread, that answers the few calls kfp.Client makes to submit a run, the way the backend's
API answers them (kubeflow/pipelines backend/src/apiserver: healthz writes commit_sha, tag_name
and multi_user at /apis/v1beta1/healthz and /apis/v2beta1/healthz), and records every request
(method, path, query, headers with lowercase names, JSON body) so that a test sees what kfp really sent:

    GET  /apis/v2beta1/healthz, /apis/v1beta1/healthz   the version (tag_name) and multi_user
    GET  /apis/v2beta1/experiments?filter=...&namespace=  the experiments created so far
    POST /apis/v2beta1/experiments                      creates one (in its namespace)
    POST /apis/v2beta1/runs                             creates a run: {"run_id": "run-1", ...}

Sign-in the way a multi-user Kubeflow refuses it: `required_headers` ({'Authorization':
'Bearer T'} or {'Cookie': 'authservice_session=S'}) not sent -> 401, or, with `sign_in_redirect`,
a 302 to a sign-in page (as Dex/oauth2-proxy answer a browser); `allowed_namespace`: an
experiment in another namespace -> 403. `healthz_open`: healthz answers without sign-in (as the
ml-pipeline service does through `kubectl port-forward`). `certfile`/`keyfile`: https.
"""

import dataclasses
import http.server
import json
import ssl
import threading
import urllib.parse


@dataclasses.dataclass
class Request:
    method: str
    path: str
    query: dict
    headers: dict
    body: object


class KfpApiStandIn:
    """The stand-in server; `url` is its base URL, `requests` what it received. Use as a context manager."""

    def __init__(self, tag_name="2.3.0", multi_user=False, v2=True, required_headers=None, sign_in_redirect=False,
                 allowed_namespace=None, healthz_open=False, certfile=None, keyfile=None):
        self.tag_name, self.multi_user, self.v2 = tag_name, multi_user, v2
        self.required_headers = dict(required_headers or {})
        self.sign_in_redirect, self.allowed_namespace, self.healthz_open = sign_in_redirect, allowed_namespace, \
            healthz_open
        self.requests, self.experiments, self.runs = [], [], []
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        scheme = "http"
        if certfile:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(certfile, keyfile)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self._server.server_port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._server.shutdown()
        self._server.server_close()

    def paths(self, method=None):
        return [request.path for request in self.requests if method in (None, request.method)]

    def _handler_class(self):
        stand_in = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):  # Quiet.
                pass

            def do_GET(self):
                stand_in._answer(self, "GET")

            def do_POST(self):
                stand_in._answer(self, "POST")

        return Handler

    def _reply(self, handler, status, payload=None, headers=()):
        data = json.dumps(payload if payload is not None else {}).encode("utf-8")
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _signed_in(self, headers):
        return all(headers.get(name.lower()) == value for name, value in self.required_headers.items())

    def _answer(self, handler, method):
        url = urllib.parse.urlsplit(handler.path)
        query = {key: values[0] for key, values in urllib.parse.parse_qs(url.query, keep_blank_values=True).items()}
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        headers = {name.lower(): value for name, value in handler.headers.items()}  # Names are case-blind.
        self.requests.append(Request(method, url.path, query, headers, body))
        healthz = url.path in ("/apis/v1beta1/healthz", "/apis/v2beta1/healthz")
        if not (healthz and self.healthz_open) and not self._signed_in(headers):
            if self.sign_in_redirect:
                return self._reply(handler, 302, headers=[("Location", "/dex/auth?client_id=kubeflow-oidc")])
            return self._reply(handler, 401, {"error": "Unauthenticated", "code": 16,
                                              "message": "Request header error: there is no user identity header."})
        if healthz:
            if url.path.startswith("/apis/v2beta1") and not self.v2:
                return self._reply(handler, 404, {"error": "Not Found"})
            answer = {"commit_sha": "0123abc", "tag_name": self.tag_name, "multi_user": self.multi_user}
            return self._reply(handler, 200, {key: value for key, value in answer.items() if value is not None})
        if url.path == "/apis/v2beta1/experiments":
            namespace = query.get("namespace") if method == "GET" else (body or {}).get("namespace")
            if self.allowed_namespace is not None and namespace != self.allowed_namespace:
                return self._reply(handler, 403, {"code": 7, "message": f"PermissionDenied: user may not access "
                                                                      f"namespace {namespace!r}"})
            if method == "GET":
                wanted = json.loads(query.get("filter") or "{}").get("predicates", [{}])[0].get("stringValue")
                found = [e for e in self.experiments if e["display_name"] == wanted]
                return self._reply(handler, 200, {"experiments": found, "total_size": len(found)} if found else {})
            experiment = {"experiment_id": f"exp-{len(self.experiments) + 1}", **(body or {})}
            self.experiments.append(experiment)
            return self._reply(handler, 200, experiment)
        if url.path == "/apis/v2beta1/runs" and method == "POST":
            run = {"run_id": f"run-{len(self.runs) + 1}", "display_name": body.get("display_name"),
                   "experiment_id": body.get("experiment_id"), "state": "PENDING"}
            self.runs.append(body)
            return self._reply(handler, 200, run)
        return self._reply(handler, 404, {"error": f"no route {method} {url.path}"})
