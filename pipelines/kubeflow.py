"""`ddsp_pipeline submit --kfp-host`: the compiled pipeline as a run on a Kubeflow Pipelines API.

How submit signs in (flags of `add_arguments`; secrets are read from files, never taken on the
command line, where `ps` would show them):

    --kfp-namespace NS         multi-user Kubeflow: the profile namespace the run belongs to
    --kfp-token-file FILE      a bearer token, e.g. `kubectl create token SA -n NS` written to a
                               file (default: the file KF_PIPELINES_SA_TOKEN_PATH names, the
                               variable kfp's in-cluster credentials read, when it is set)
    --kfp-cookies-file FILE    a Cookie header, e.g. the 'authservice_session=...' or
                               'oauth2_proxy_kubeflow=...' cookie of a browser session (Dex)
    --kfp-iap-client-id ID     a cluster behind Identity-Aware Proxy: the OAuth client id; the token
                               comes from the Google service account credentials, or from
                               KF_PIPELINES_APP_OAUTH2_CLIENT_ID/_SECRET for a user account (kfp)
    --kfp-ssl-ca-cert FILE     the CA certificate of a host whose TLS certificate is not public

Before anything is uploaded, `connect` asks the API's healthz for its version (the
same request, with the same credentials, as the run will be sent with): a 401/403 or a sign-in
page stops submit saying which flag to give, and a backend older than MINIMUM_BACKEND_VERSION
is refused (exit status 2; a version it cannot tell is warned about).
"""

import dataclasses
import json
import os
import re
import sys
import warnings

from pipelines.submit_errors import SubmitError, api_error, bad_input

# Kubeflow Pipelines 2.3.0 is the first backend that runs the steps of a non-root image: before
# it, the launcher wrote input artifacts under /gcs, /minio and /s3 at the filesystem's root
# (`mkdir /minio: permission denied` for any other user); 2.3.0 mounts an emptyDir at each
# (kubeflow/pipelines PR #10857, "mount EmptyDir volumes for launcher write locations", commit
# 65839ced, first tagged in 2.3.0; the Kubeflow 1.8 and 1.9 platforms ship older backends). The
# project's images run as a non-root user. Every backend's healthz says its version as tag_name
# (backend/src/apiserver/main.go, v1beta1 since 1.x and v2beta1 since 2.0).
MINIMUM_BACKEND_VERSION = (2, 3, 0)
# The variable kfp's in-cluster credentials read for the path of a service account token.
TOKEN_FILE_ENV = "KF_PIPELINES_SA_TOKEN_PATH"
# kfp reads these for IAP with a user account (the desktop OAuth client's id and secret).
IAP_USER_CLIENT_ENV = ("KF_PIPELINES_APP_OAUTH2_CLIENT_ID", "KF_PIPELINES_APP_OAUTH2_CLIENT_SECRET")
HEALTHZ_TIMEOUT_S = 30
_VERSION = re.compile(r"^v?(\d+)\.(\d+)\.(\d+)")
# Hosts kfp signs in to with gcloud's access token by itself (AI Platform Pipelines' inverse proxy).
_INVERSE_PROXY_HOST = re.compile(r"\S+\.googleusercontent\.com/?$")


def add_arguments(group):
    """Registers the Kubeflow sign-in flags on `group` (an argparse parser or argument group)."""
    group.add_argument("--kfp-namespace", default=None, metavar="NAMESPACE",
                       help="Kubeflow: the namespace (your profile's) the run belongs to, on a multi-user "
                            "Kubeflow. Default: kfp's context (~/.config/kfp/context.json), else none.")
    group.add_argument("--kfp-token-file", default=None, metavar="FILE",
                       help="Kubeflow: a file holding the bearer token to send, e.g. from `kubectl create token "
                            f"SA -n NAMESPACE`. Default: the file ${TOKEN_FILE_ENV} names, when it is set.")
    group.add_argument("--kfp-cookies-file", default=None, metavar="FILE",
                       help="Kubeflow: a file holding the Cookie header to send, e.g. "
                            "'authservice_session=...' copied from a signed-in browser (Dex, oauth2-proxy).")
    group.add_argument("--kfp-iap-client-id", default=None, metavar="ID",
                       help="Kubeflow behind Identity-Aware Proxy: the proxy's OAuth client id (the token is "
                            "made from your Google credentials).")
    group.add_argument("--kfp-ssl-ca-cert", default=None, metavar="FILE",
                       help="Kubeflow over https with a private certificate authority: its CA certificate (PEM).")
    group.add_argument("--kfp-skip-version-check", action="store_true",
                       help="Kubeflow: submit even when the backend reports a version older than "
                            f"{_version_text(MINIMUM_BACKEND_VERSION)} (a distribution with its own numbering whose "
                            "launcher already runs non-root images).")


FLAGS = ("kfp_namespace", "kfp_token_file", "kfp_cookies_file", "kfp_iap_client_id", "kfp_ssl_ca_cert",
         "kfp_skip_version_check")


def given_flags(args):
    """The Kubeflow-only flags given, as '--kfp-...' names."""
    return ["--" + name.replace("_", "-") for name in FLAGS if getattr(args, name, None)]


@dataclasses.dataclass(frozen=True)
class KfpAccess:
    """How submit reaches and signs in to a Kubeflow Pipelines API.

    host: the API's URL. namespace: the run's namespace (None: kfp's context). token: a bearer
    token. cookies: a Cookie header. iap_client_id: Identity-Aware Proxy's OAuth client id.
    ssl_ca_cert: a CA certificate file. token_from: where the token came from, for messages
    ('--kfp-token-file F', ...; '' without a token).
    """

    host: str
    namespace: str = None
    token: str = dataclasses.field(default=None, repr=False)
    cookies: str = dataclasses.field(default=None, repr=False)
    iap_client_id: str = None
    ssl_ca_cert: str = None
    token_from: str = ""


def read_secret_file(path, flag):
    """The stripped text of `path` (a token or cookie file); SubmitError (exit 2) naming `flag`
    when it cannot be read or is empty."""
    try:
        with open(os.path.expanduser(path)) as file:
            text = file.read().strip()
    except OSError as error:
        raise bad_input("check flags", f"{flag} {path!r} cannot be read ({error.strerror or error}): give a file "
                        "holding the value (nothing else).") from None
    if not text:
        raise bad_input("check flags", f"{flag} {path!r} is empty: write the value into it.")
    return text


def access_from_args(args, environ):
    """The KfpAccess of parsed submit flags. `environ` (os.environ at run time) supplies
    TOKEN_FILE_ENV when --kfp-token-file is not given. Raises SubmitError (exit 2) for a file
    that cannot be read, a CA file that does not exist, or a token together with an IAP client id."""
    token, token_from = None, ""
    if args.kfp_token_file:
        token, token_from = read_secret_file(args.kfp_token_file, "--kfp-token-file"), \
            f"--kfp-token-file {args.kfp_token_file}"
    elif environ.get(TOKEN_FILE_ENV) and not args.kfp_iap_client_id:
        path = environ[TOKEN_FILE_ENV]
        token, token_from = read_secret_file(path, f"${TOKEN_FILE_ENV}"), f"${TOKEN_FILE_ENV} ({path})"
    if args.kfp_token_file and args.kfp_iap_client_id:
        raise bad_input("check flags", "give one of --kfp-token-file and --kfp-iap-client-id: behind "
                        "Identity-Aware Proxy the token is made from the client id.")
    cookies = read_secret_file(args.kfp_cookies_file, "--kfp-cookies-file") if args.kfp_cookies_file else None
    if args.kfp_ssl_ca_cert and not os.path.isfile(args.kfp_ssl_ca_cert):
        raise bad_input("check flags", f"--kfp-ssl-ca-cert {args.kfp_ssl_ca_cert!r} is not a file: give the PEM "
                        "file of the certificate authority that signed the host's certificate.")
    host = args.kfp_host.strip()
    if not re.match(r"^https?://", host):
        raise bad_input("check flags", f"--kfp-host {host!r} has no scheme: give its URL, e.g. "
                        f"https://{host} (or http://localhost:8080 through `kubectl port-forward`).")
    return KfpAccess(host=host.rstrip("/"), namespace=args.kfp_namespace or None, token=token, cookies=cookies,
                     iap_client_id=args.kfp_iap_client_id or None, ssl_ca_cert=args.kfp_ssl_ca_cert or None,
                     token_from=token_from)


def resolve_token(access, environ):
    """`access` with the token that kfp would make itself (IAP: from the Google credentials, or
    the user OAuth client of IAP_USER_CLIENT_ENV; the inverse proxy: gcloud's access token), so
    that the version check and the run send the same one."""
    if access.token:
        return access
    from kfp.client import auth

    if access.iap_client_id:
        other_id, other_secret = (environ.get(name) for name in IAP_USER_CLIENT_ENV)
        try:
            token, _ = auth.get_auth_token(access.iap_client_id, other_id, other_secret)
        except Exception as error:  # google.auth's errors: no credentials, a refused exchange.
            raise SubmitError("connect to Kubeflow", f"cannot make an Identity-Aware Proxy token for client id "
                              f"{access.iap_client_id} ({api_error(error)}). Set GOOGLE_APPLICATION_CREDENTIALS to "
                              "a service account key allowed through the proxy, or set "
                              f"{' and '.join(IAP_USER_CLIENT_ENV)} for your user account.") from None
        if not token:
            raise SubmitError("connect to Kubeflow", f"no Identity-Aware Proxy token for client id "
                              f"{access.iap_client_id}: set GOOGLE_APPLICATION_CREDENTIALS to a service account key "
                              f"(or {' and '.join(IAP_USER_CLIENT_ENV)} for a user account).")
        return dataclasses.replace(access, token=token, token_from=f"--kfp-iap-client-id {access.iap_client_id}")
    if _INVERSE_PROXY_HOST.match(access.host.split("://", 1)[-1]):
        try:
            token = auth.get_gcp_access_token()
        except Exception as error:
            raise SubmitError("connect to Kubeflow", f"cannot get a Google access token for {access.host} "
                              f"({api_error(error)}): run `gcloud auth application-default login`.") from None
        return dataclasses.replace(access, token=token, token_from="your Google credentials") if token else access
    return access


def _api_configuration(access, retries=None):
    """kfp_server_api's Configuration for `access` (as kfp.Client makes it from the same values)."""
    import kfp_server_api

    config = kfp_server_api.Configuration()
    config.host = access.host
    if access.ssl_ca_cert:
        config.ssl_ca_cert = access.ssl_ca_cert
    if access.token:
        config.api_key["authorization"] = access.token
        config.api_key_prefix["authorization"] = "Bearer"
    config.retries = retries
    return config


def healthz(access, timeout_s=HEALTHZ_TIMEOUT_S):
    """The JSON the API's healthz answers ({'tag_name': '2.3.0', 'commit_sha': ..., 'multi_user':
    ...}: every backend since 1.x writes these three), asked once, redirects not followed.
    A 404 at /apis/v2beta1/healthz (a 1.x backend) asks /apis/v1beta1/healthz and adds
    'api': 'v1beta1'.

    Raises:
        SubmitError('connect to Kubeflow', ...): unreachable, refused (401/403, saying which flag
        to give), redirected to a sign-in page, or not the Pipelines API.
    """
    import kfp_server_api

    client = kfp_server_api.ApiClient(_api_configuration(access, retries=False), cookie=access.cookies)
    api = kfp_server_api.HealthzServiceApi(client)
    try:
        try:
            response = api.healthz_service_get_healthz(_preload_content=False, _request_timeout=timeout_s)
            found = {}
        except kfp_server_api.ApiException as error:
            if error.status != 404:
                raise
            response = client.call_api("/apis/v1beta1/healthz", "GET", header_params={"Accept": "application/json"},
                                       auth_settings=["Bearer"], _preload_content=False,
                                       _request_timeout=timeout_s, _return_http_data_only=True)
            found = {"api": "v1beta1"}
    except kfp_server_api.ApiException as error:
        raise SubmitError("connect to Kubeflow", refusal_message(access, error)) from None
    except Exception as error:  # urllib3: refused, unresolvable, timed out, TLS.
        raise SubmitError("connect to Kubeflow", unreachable_message(access, error)) from None
    try:
        found.update(json.loads(response.data.decode("utf-8")))
    except (ValueError, UnicodeDecodeError, AttributeError):
        raise SubmitError("connect to Kubeflow", f"{access.host}/apis/v2beta1/healthz answered with something "
                          f"other than the Kubeflow Pipelines API's JSON ({_content_type(response)}): a sign-in page "
                          f"or another service? {_SIGN_IN_HELP}") from None
    return found


_SIGN_IN_HELP = ("Sign in with --kfp-token-file FILE (a Kubernetes service account token, e.g. `kubectl create token "
                 "default-editor -n NAMESPACE`), --kfp-cookies-file FILE (the session cookie of a signed-in browser, "
                 "e.g. 'authservice_session=...') or, behind Identity-Aware Proxy, --kfp-iap-client-id ID.")


def _content_type(response):
    headers = getattr(response, "headers", None) or {}
    return f"Content-Type {headers.get('Content-Type') or 'none'}"


def _header(error, name):
    for key, value in (getattr(error, "headers", None) or {}).items():
        if key.lower() == name.lower():
            return value
    return ""


def refusal_message(access, error):
    """What to do about the API's HTTP error `error` (a kfp_server_api.ApiException)."""
    status = error.status
    where = f"the Kubeflow Pipelines API at {access.host}"
    if status == 0:  # kfp_server_api's TLS error.
        return unreachable_message(access, error)
    if status == 401:
        if access.token or access.cookies:
            sent = access.token_from or f"the cookies of --kfp-cookies-file"
            return (f"{where} refused the credentials from {sent} (HTTP 401): the token or session may have "
                    "expired; make a new one.")
        return f"{where} asks to sign in (HTTP 401). {_SIGN_IN_HELP}"
    if status == 403:
        namespace = (f"--kfp-namespace {access.namespace}" if access.namespace
                     else "no --kfp-namespace (on a multi-user Kubeflow, give your profile's namespace)")
        return (f"{where} forbids this account (HTTP 403) with {namespace}: check that the account of "
                f"{access.token_from or 'the cookies/credentials given'} may use that namespace (a contributor "
                "of the profile, or a RoleBinding to kubeflow-edit), or give the namespace it may use.")
    if status in (301, 302, 303, 307, 308):
        return (f"{where} redirected the request to {_header(error, 'Location') or 'another page'} (HTTP {status}), "
                f"a sign-in page: the API is behind a login. {_SIGN_IN_HELP}")
    if status == 404:
        return (f"{access.host} has no Kubeflow Pipelines healthz (HTTP 404 at /apis/v2beta1/healthz and "
                "/apis/v1beta1/healthz): give --kfp-host the Pipelines API's URL, e.g. https://HOST/pipeline on "
                "a full Kubeflow, or http://localhost:8080 with `kubectl port-forward -n kubeflow "
                "svc/ml-pipeline 8080:8888`.")
    return f"{where} answered HTTP {status} {error.reason or ''}".rstrip() + " to its healthz."


def _chain(error):
    """`error` and the errors it was raised while handling, outermost first (kfp_server_api hides
    a TLS failure behind an AttributeError of its own: the cause is further in)."""
    chain = []
    while isinstance(error, BaseException) and error not in chain:
        chain.append(error)
        error = error.__cause__ or error.__context__
    return chain


def unreachable_message(access, error):
    """What to do when the API could not be reached at all (`error`: urllib3's, or a text)."""
    chain = _chain(error) or [error]
    text = " | ".join(str(item) for item in chain)
    cause = _first_line(str(chain[-1]))
    if "CERTIFICATE_VERIFY_FAILED" in text or "SSLError" in text or "certificate" in text.lower():
        return (f"the TLS certificate of {access.host} is not trusted here ({cause}): give --kfp-ssl-ca-cert "
                "FILE, the PEM of the certificate authority that signed it.")
    return (f"cannot reach {access.host} ({cause}). Check --kfp-host (the Kubeflow Pipelines API, reachable from "
            "here: e.g. `kubectl port-forward -n kubeflow svc/ml-pipeline 8080:8888` and --kfp-host "
            "http://localhost:8080).")


def _first_line(text):
    reason = re.search(r"Caused by \w+\((.*)\)\)?$", text.strip().splitlines()[-1] if text.strip() else "")
    line = reason.group(1) if reason else (text.strip().splitlines() or [""])[0]
    return line[:300]


def parse_version(tag_name):
    """(major, minor, patch) of a backend's tag_name ('2.3.0', 'v2.5.0', '2.3.0-rc.1'), or None
    ('unknown', 'master', '', None)."""
    match = _VERSION.match(str(tag_name or "").strip())
    return tuple(int(part) for part in match.groups()) if match else None


def _version_text(version):
    return ".".join(map(str, version))


def check_backend_version(found, host, skip=False):
    """The backend's version text from its healthz answer `found`; SubmitError (exit 2) when it
    is older than MINIMUM_BACKEND_VERSION (unless `skip`), a warning on stderr when it cannot be
    told."""
    tag = found.get("tag_name")
    version = parse_version(tag)
    minimum = _version_text(MINIMUM_BACKEND_VERSION)
    if version is None:
        print(f"connect to Kubeflow: warning: {host} does not say its Kubeflow Pipelines version (tag_name "
              f"{tag!r}); the steps run as a non-root user, which needs a backend of {minimum} or later (older "
              "ones fail every step with 'mkdir /minio: permission denied').", file=sys.stderr)
        return str(tag or "unknown")
    if version < MINIMUM_BACKEND_VERSION:
        said = (f"{host} runs Kubeflow Pipelines {tag}" + (" (a 1.x API: no /apis/v2beta1)"
                                                           if found.get("api") == "v1beta1" else ""))
        if skip:
            print(f"connect to Kubeflow: warning: {said}, older than {minimum}; submitting anyway "
                  "(--kfp-skip-version-check).", file=sys.stderr)
            return str(tag)
        raise bad_input("connect to Kubeflow", f"{said}; the pipeline needs {minimum} or later: its images run as a "
                        "non-root user, and older launchers write to /gcs, /minio and /s3 at the filesystem's root, "
                        "so every step would fail ('mkdir /minio: permission denied'). Upgrade Kubeflow Pipelines "
                        f"to {minimum} or later, or give "
                        "--kfp-skip-version-check if this build already mounts those folders.")
    return str(tag)


def connect(access, skip_version_check=False, environ=None):
    """A kfp.Client for `access`, once the API answered its healthz and its version passed
    check_backend_version; returns (client, version text)."""
    import kfp

    access = resolve_token(access, os.environ if environ is None else environ)
    found = healthz(access)
    version = check_backend_version(found, access.host, skip=skip_version_check)
    print(f"connect to Kubeflow: {access.host} runs Kubeflow Pipelines {version}"
          + (f", namespace {access.namespace}" if access.namespace else "") + ".")
    try:
        with warnings.catch_warnings():  # kfp's 'only works with Kubeflow Pipeline v2.0.0-beta.2 and later'.
            warnings.simplefilter("ignore", FutureWarning)
            client = kfp.Client(host=access.host, namespace=access.namespace or "kubeflow",
                                existing_token=access.token, cookies=access.cookies, ssl_ca_cert=access.ssl_ca_cert)
    except Exception as error:
        raise SubmitError("connect to Kubeflow", f"{api_error(error)}. Check --kfp-host {access.host} and your "
                          "access to it.") from None
    if found.get("multi_user") and not client.get_user_namespace():
        raise bad_input("connect to Kubeflow", f"{access.host} is a multi-user Kubeflow, where a run belongs to a "
                        "namespace: give --kfp-namespace NAMESPACE (your profile's namespace, e.g. "
                        "kubeflow-user-example-com).")
    return client, version


def submit_kfp(client, template_path, host, parameter_values, experiment_name=None, run_name=None,
               enable_caching=True, pipeline_root=None, service_account=None, namespace=None):
    """Starts a run of the compiled pipeline through `client` (from `connect`); returns the run.

    Raises:
        SubmitError('submit to Kubeflow', ...): the API refused the run.
    """
    try:
        run = client.create_run_from_pipeline_package(
            template_path, arguments=parameter_values, run_name=run_name, experiment_name=experiment_name,
            namespace=namespace, enable_caching=enable_caching, pipeline_root=pipeline_root,
            service_account=service_account)
    except Exception as error:
        status = getattr(error, "status", None)
        if status in (401, 403):  # Signed in for healthz, refused for runs (or healthz is open).
            raise SubmitError("submit to Kubeflow", refusal_message(KfpAccess(host=host, namespace=namespace),
                                                                    error)) from None
        reason = _first_line(api_error(error)) if status is None else \
            f"HTTP {status} {getattr(error, 'reason', '')}: {_error_body(error)}"
        raise SubmitError("submit to Kubeflow", f"{reason}. Check --kfp-host {host} (the Kubeflow Pipelines API, "
                          "reachable from here) and your access to it.") from None
    run_id = getattr(run, "run_id", "")
    print(f"Submitted to Kubeflow: run {run_id}")
    print(f"View it at {host.rstrip('/')}/#/runs/details/{run_id}")
    return run


def _error_body(error):
    """The API's own message from an ApiException's JSON body ({'message': ...}), else its text."""
    body = getattr(error, "body", None) or b""
    try:
        return json.loads(body).get("message") or body.decode("utf-8", "replace")[:300]
    except (ValueError, AttributeError):
        return (body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body))[:300]
