r"""`ddsp_pipeline submit`: send the clarinet pipeline to Vertex AI Pipelines or Kubeflow.

    ddsp_pipeline submit --vertex --project P --region us-central1 --pipeline-root gs://B/ddsp \
        --audio '/data/clarinet/*.wav' --preset full --image us-docker.pkg.dev/P/ddsp/ddsp-pipeline:0.1.0
    ddsp_pipeline submit --kfp-host https://HOST --pipeline-root gs://B/ddsp --audio 'gs://B/audio/*.wav'

What it does, in order; any failure stops it with a message naming the step and the cause,
and exit status 2 for bad flags or input (nothing submitted), 1 when Cloud Storage or the
pipelines API failed:

1. check flags: exactly one of --vertex / --kfp-host; --project, --region and a gs://
   --pipeline-root for Vertex; a known --preset; shipped gin files only (the remote steps
   cannot read a file on this machine).
2. template: compiles the pipeline from this checkout into a temporary YAML for the target
   (--vertex: a Vertex AI accelerator type; --kfp-host: a Kubernetes GPU resource, node
   selectors, tolerations) with --image as the components' image (default ddsp-pipeline:0.1.0),
   so what runs is always the code of this checkout; `--template FILE` submits an already
   compiled YAML (e.g. pipelines/clarinet.yaml) unchanged.
3. check pipeline root: writes and deletes a small object under a gs:// pipeline root.
4. upload audio: local files named by --audio are copied to
   `<pipeline root>/inputs/audio/<folder>-<digest of the file list>/` (their layout below the
   pattern's folder kept), skipping files already there with the same MD5; the pipeline gets
   a gs:// glob of exactly those copies, and `audio_fingerprint`, a digest of their names and
   checksums, so that kfp's cache is not reused when a file's contents change. The same
   files go to the same folder (re-submitting uploads nothing); a different set of files goes
   to a new folder, so a folder never mixes sets and nothing is ever deleted. gs:// globs are
   passed through unchanged (checked to match some file); their listing (names, sizes,
   generations) goes into `audio_fingerprint`, so a rewritten object is prepared again.
5. submit: aiplatform.PipelineJob(...).submit() or kfp.Client(host).create_run_from_pipeline_package().

Only parameters given on the command line are passed; the others keep the pipeline's
defaults (no --audio: the clarinet material bundled in the image, evaluated on its validation clarinet).
"""

import base64
import concurrent.futures
import dataclasses
import hashlib
import glob
import os
import re
import sys
import tempfile
import time
import uuid

from ddsp_core.pipeline.steps import StepError
from ddsp_core.pipeline.steps import split_commas as split_patterns
from ddsp_core.training.storage import is_url, join

from pipelines.fingerprint import audio_fingerprint

PROG = "ddsp_pipeline submit"
AUDIO_FOLDER = "inputs/audio"  # Under the pipeline root.
CREPE_CAPACITIES = ["tiny", "small", "medium", "large", "full"]
UPLOAD_THREADS = 8
_GLOB_CHARS = re.compile(r"[*?\[]")


class SubmitError(StepError):
    """Submit stopped: `step` names where, `cause` says why and what to do; `exit_status` is 2
    for bad flags or input (nothing was submitted), 1 when Cloud Storage or the pipelines API failed."""

    def __init__(self, step, cause, exit_status=1):
        super().__init__(step, cause)
        self.exit_status = exit_status


def _bad_input(step, cause):
    return SubmitError(step, cause, exit_status=2)


# ---------------------------------------------------------------------------------------------
# Command line


def add_arguments(parser):
    """Registers the submit flags on `parser` (an argparse parser or subparser)."""
    what = parser.add_argument_group("what to run (only the flags given are passed; the others keep the "
                                     "pipeline's defaults)")
    what.add_argument("--audio", default=None,
                      help="Glob(s) of audio files, comma-separated: local files are uploaded under the pipeline "
                           "root first; gs:// globs are used as they are (default: the clarinet material bundled in "
                           "the image).")
    what.add_argument("--eval-audio", default=None,
                      help="Glob(s) of audio held out for eval and sample, uploaded like --audio (default: the "
                           "validation clarinet bundled in the image; with --audio, none: the preset's split of "
                           "those files). '' for none.")
    what.add_argument("--preset", default=None,
                      help="Preset name: quick, full or vst (default: the pipeline's, quick).")
    what.add_argument("--num-steps", type=int, default=None, help="Training steps (default: the preset's).")
    what.add_argument("--batch-size", type=int, default=None, help="Training batch (default: the preset's).")
    what.add_argument("--crepe-capacity", default=None, choices=CREPE_CAPACITIES,
                      help="CREPE size for the prepare job (default: the preset's).")
    what.add_argument("--gin-file", action="append", default=[],
                      help="Shipped gin file for train/eval/sample, e.g. models/solo_instrument.gin. Repeatable.")
    what.add_argument("--gin-param", action="append", default=[],
                      help="Gin binding for train/eval/sample, e.g. 'learning_rate=1e-3'. Repeatable.")
    what.add_argument("--beam-options", default=None,
                      help="Comma-separated Beam options for the prepare job, written with '=' as they start "
                           "with '--', e.g. --beam-options=--runner=DataflowRunner,--project=P,--region=R,"
                           "--temp_location=gs://B/tmp")
    what.add_argument("--template", default=None,
                      help="Submit this compiled pipeline YAML instead of compiling one from this checkout.")

    from pipelines import settings_flags

    settings_flags.add_arguments(parser, with_target=False)

    where = parser.add_argument_group("where to run it")
    where.add_argument("--vertex", action="store_true", help="Submit to Vertex AI Pipelines.")
    where.add_argument("--project", default=None, help="Google Cloud project (Vertex; required).")
    where.add_argument("--region", default=None, help="Vertex AI region, e.g. us-central1 (Vertex; required).")
    where.add_argument("--kfp-host", default=None, help="Submit to the Kubeflow Pipelines API at this URL.")
    where.add_argument("--pipeline-root", default=None,
                       help="Where the run's artifacts go, gs://BUCKET/PATH (required for Vertex and for local "
                            "--audio); uploaded audio goes to <pipeline root>/inputs/audio/.")
    where.add_argument("--service-account", default=None, help="Service account the steps run as.")
    where.add_argument("--experiment", default=None, help="Experiment to file the run under.")
    where.add_argument("--run-name", default=None,
                       help="Kubeflow: the run's name. Vertex: the job id (lowercase letters, digits, '-').")
    where.add_argument("--display-name", default=None,
                       help="Vertex: the job's display name (default: ddsp-clarinet). Kubeflow: the run's name "
                            "when --run-name is not given.")
    where.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                       help="Vertex: a label on the job. Repeatable.")
    where.add_argument("--no-cache", action="store_true",
                       help="Rerun every step instead of reusing cached outputs of identical earlier steps.")
    where.add_argument("--no-resume", action="store_true",
                       help="Train from step 0, setting aside the checkpoints an earlier run with the same inputs "
                            "left under <pipeline root>/checkpoints (default: the train step resumes from them).")


def main(args):
    """Runs `ddsp_pipeline submit` for parsed `args`; returns the exit status (0, 1 or 2).

    Messages go to stderr as 'ddsp_pipeline submit: error: ...'.
    """
    try:
        check_args(args)
        with tempfile.TemporaryDirectory(prefix="ddsp-submit-") as temporary:
            template = prepare_template(args, temporary)
            parameters = parameter_values(args)
            check_template_parameters(template, parameters)
            client = None
            if args.pipeline_root and args.pipeline_root.startswith("gs://"):
                client = storage_client(args.project)
                check_pipeline_root(args.pipeline_root, client)
            fingerprints = []
            for flag, name in (("audio", "audio_pattern"), ("eval_audio", "eval_audio_pattern")):
                if getattr(args, flag):
                    pattern, report = upload_audio(getattr(args, flag), join(args.pipeline_root or "", AUDIO_FOLDER),
                                                   client)
                    for line in report.lines():
                        print(line)
                    parameters[name] = pattern
                    fingerprints += [report.fingerprint] if report.fingerprint else []
                    passed_gs = [part for part in report.passed_through if part.startswith("gs://")]
                    if passed_gs:  # kfp's cache sees only the glob's text: digest the objects it names.
                        fingerprints.append(audio_fingerprint(",".join(passed_gs), client))
            if fingerprints:
                parameters["audio_fingerprint"] = "-".join(fingerprints)
            if args.eval_audio == "" or (args.audio and args.eval_audio is None):
                # None given, or own --audio: the bundled validation clarinet is no held-out set for it.
                parameters["eval_audio_pattern"] = ""
            if "checkpoint_dir" in template_parameters(template):  # Templates compiled before it lack it.
                parameters.update(checkpoint_parameters(args, parameters))
            if args.vertex:
                submit_vertex(template, args.project, args.region, args.pipeline_root, parameters,
                              display_name=args.display_name or _pipeline_name(), service_account=args.service_account,
                              enable_caching=not args.no_cache, labels=parse_labels(args.label),
                              experiment=args.experiment, job_id=args.run_name)
            else:
                submit_kfp(template, args.kfp_host, parameters, experiment_name=args.experiment,
                           run_name=args.run_name or args.display_name, enable_caching=not args.no_cache,
                           pipeline_root=args.pipeline_root, service_account=args.service_account)
    except StepError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", 1)
    return 0


def check_args(args):
    """Raises SubmitError (exit status 2, saying what to do) for flags that cannot work together."""
    if bool(args.vertex) == bool(args.kfp_host):
        raise _bad_input("check flags", "give exactly one of --vertex (Vertex AI Pipelines) and "
                         "--kfp-host URL (Kubeflow Pipelines).")
    root = args.pipeline_root
    if args.vertex:
        missing = [flag for flag, value in (("--project", args.project), ("--region", args.region),
                                            ("--pipeline-root", root)) if not value]
        if missing:
            raise _bad_input("check flags", f"--vertex needs {', '.join(missing)} (e.g. --project my-project "
                             "--region us-central1 --pipeline-root gs://my-bucket/ddsp).")
        if args.run_name and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", args.run_name):
            raise _bad_input("check flags", f"--run-name {args.run_name!r} cannot be a Vertex AI job id: use lowercase "
                             "letters, digits and '-' (at most 128, starting with a letter or digit), or leave it "
                             "out for a generated one.")
        if not root.startswith("gs://"):
            raise _bad_input("check flags", f"--pipeline-root {root!r} is not a gs:// path; Vertex AI writes "
                             "the artifacts to Cloud Storage: give --pipeline-root gs://BUCKET/PATH.")
    if args.preset is not None:
        from ddsp_core.pipeline.presets import get_preset

        try:
            get_preset(args.preset)
        except ValueError as error:
            raise _bad_input("check flags", f"--preset: {error}") from None
    for flag, value in (("--num-steps", args.num_steps), ("--batch-size", args.batch_size)):
        if value is not None and value < 1:
            raise _bad_input("check flags", f"{flag} must be at least 1 (leave it out for the preset's), "
                             f"not {value}.")
    from pipelines import settings_flags
    from pipelines.clarinet import SettingsError

    if args.template and settings_flags.given(args):
        raise _bad_input("check flags", "--image and the GPU flags apply when the pipeline is compiled; a "
                         "--template is submitted as it is. Give one of them (or recompile the template with "
                         "`ddsp_pipeline compile --image IMAGE ... --output FILE`).")
    if not args.template:
        try:
            settings_flags.settings_from(args, target=_target(args))
        except SettingsError as error:
            raise _bad_input("check flags", str(error)) from None
    for path in args.gin_file:
        check_gin_file(path)
    parse_labels(args.label)
    local_audio = [part for part in split_patterns(",".join(filter(None, [args.audio, args.eval_audio])))
                   if not is_url(part)]
    if local_audio and not (root or "").startswith("gs://"):
        raise _bad_input(
            "upload audio", f"the local audio {', '.join(map(repr, local_audio))} must be uploaded for the "
            "cluster to read it, and submit uploads only to a gs:// pipeline root: give --pipeline-root "
            "gs://BUCKET/PATH, or copy the files where the cluster can read them and pass that glob with --audio.")


def check_gin_file(path):
    """A gin file the remote steps can read: a shipped one (by name or by its path in a checkout)
    or gs://; SubmitError for a file on this machine or an unknown name."""
    from ddsp_core.training.gin_configs import GIN_DIR, resolve_gin_file

    if is_url(path) or os.path.isfile(os.path.join(GIN_DIR, path)):
        return
    resolved = resolve_gin_file(path)
    if os.path.abspath(resolved).startswith(os.path.abspath(GIN_DIR) + os.sep):
        return
    shipped = sorted(os.path.relpath(name, GIN_DIR) for name in glob.glob(os.path.join(GIN_DIR, "*", "*.gin")))
    if os.path.exists(path):
        raise _bad_input("check flags", f"--gin-file {path!r} is a file on this machine, which the remote steps "
                         "cannot read: pass its bindings with --gin-param, or use a shipped gin file "
                         f"({', '.join(shipped)}).")
    raise _bad_input("check flags", f"--gin-file {path!r} is not a shipped gin file; shipped: "
                     f"{', '.join(shipped)}.")


def parse_labels(items):
    """['k=v', ...] -> {'k': 'v'}; SubmitError for an item without '='."""
    labels = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise _bad_input("check flags", f"--label {item!r} is not KEY=VALUE.")
        labels[key] = value
    return labels or None


def checkpoint_parameters(args, parameters):
    """The train step's stable checkpoint folder under the pipeline root, for these parameters
    ({'checkpoint_dir': ...}; with --no-resume the earlier folder is set aside and a
    'restart_id' added); {} without a pipeline root (training then lives in the run's model
    artifact only, and a rerun cannot resume it)."""
    if not args.pipeline_root:
        print("train: no --pipeline-root, so no checkpoint folder outlives the run: a rerun cannot resume "
              "training.", file=sys.stderr)
        return {}
    from ddsp_core.pipeline import resume as resume_lib

    folder = resume_lib.checkpoint_dir(args.pipeline_root, parameters)
    if not args.no_resume:
        try:
            print(resume_lib.resume_line(folder))
        except Exception as error:  # Listing gs:// needs credentials; the run can go on without this line.
            print(f"train: checkpoints go to {folder} (cannot look into it here: {type(error).__name__}).")
        return {"checkpoint_dir": folder}
    run_id = time.strftime("%Y%m%d-%H%M%S")
    moved = resume_lib.set_aside(folder, run_id)
    print(f"train: starts at step 0 (--no-resume)" + (f"; the earlier checkpoints are kept in {moved}." if moved
                                                      else "."))
    return {"checkpoint_dir": folder, "restart_id": run_id}


def parameter_values(args):
    """The pipeline parameters the user set on the command line (audio added after upload)."""
    values = {}
    if args.preset is not None:
        values["preset"] = args.preset
    if args.num_steps is not None:
        values["num_steps"] = args.num_steps
    if args.batch_size is not None:
        values["batch_size"] = args.batch_size
    if args.crepe_capacity is not None:
        values["crepe_capacity"] = args.crepe_capacity
    if args.gin_file:
        values["gin_files"] = list(args.gin_file)
    if args.gin_param:
        values["gin_params"] = list(args.gin_param)
    if args.beam_options is not None:
        values["beam_pipeline_options"] = args.beam_options
    return values


# ---------------------------------------------------------------------------------------------
# Template


def _pipeline_name():
    from pipelines.clarinet import PIPELINE_NAME

    return PIPELINE_NAME


def _target(args):
    """The pipeline target a submit goes to: 'vertex' (--vertex) or 'kubeflow' (--kfp-host)."""
    return "vertex" if args.vertex else "kubeflow"


def prepare_template(args, folder):
    """The YAML to submit: --template as given, else a fresh compile into `folder`."""
    if args.template:
        if not os.path.isfile(args.template):
            raise _bad_input("template", f"--template {args.template!r} is not a file. Write one with "
                             "`ddsp_pipeline compile --output FILE`, or leave --template out to compile now.")
        return args.template
    from pipelines import settings_flags
    from pipelines.clarinet import compile_pipeline

    path = os.path.join(folder, "clarinet.yaml")
    try:
        return compile_pipeline(path, settings_flags.settings_from(args, target=_target(args)))
    except Exception as error:  # kfp's compiler.
        raise SubmitError("template", f"compiling the pipeline failed: {error}") from None


def template_parameters(template_path):
    """Names of the pipeline parameters a compiled YAML declares."""
    import yaml

    with open(template_path) as file:
        spec = yaml.safe_load(file)
    return set(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))


def check_template_parameters(template_path, parameters):
    try:
        known = template_parameters(template_path)
    except Exception as error:
        raise _bad_input("template", f"{template_path} is not a compiled pipeline YAML ({error}).") from None
    unknown = sorted((set(parameters) | {"audio_pattern", "audio_fingerprint"}) - known)
    if unknown:
        raise _bad_input("template", f"{template_path} has no parameter(s) {', '.join(unknown)}; it declares "
                         f"{', '.join(sorted(known)) or 'none'}. Is it the clarinet pipeline?")


# ---------------------------------------------------------------------------------------------
# Cloud Storage


def split_gs_url(url):
    """'gs://bucket/a/b' -> ('bucket', 'a/b')."""
    if not url.startswith("gs://") or not url[len("gs://"):].split("/")[0]:
        raise _bad_input("check flags", f"{url!r} is not a gs://BUCKET/PATH url.")
    bucket, _, name = url[len("gs://"):].partition("/")
    return bucket, name


def storage_client(project=None):
    """A google-cloud-storage client (honours STORAGE_EMULATOR_HOST); StepError without credentials."""
    from google.cloud import storage

    try:
        return storage.Client(project=project)
    except Exception as error:  # google.auth's DefaultCredentialsError, mostly.
        raise SubmitError("check pipeline root", f"cannot reach Cloud Storage: {error}. Log in with `gcloud auth "
                        "application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS).") from None


def _api_error(error):
    """A one-line reason from a google.api_core error (its message, not the HTTP dump)."""
    return getattr(error, "message", None) or str(error)


def check_pipeline_root(pipeline_root, client):
    """Proves a gs:// pipeline root writable by writing and deleting a small object under it."""
    bucket, name = split_gs_url(pipeline_root)
    probe = join(name, f".ddsp_pipeline_write_test_{uuid.uuid4().hex}").lstrip("/")
    blob = client.bucket(bucket).blob(probe)
    try:
        blob.upload_from_string(b"ok")
    except Exception as error:
        raise _bad_input("check pipeline root", f"cannot write to {pipeline_root} ({_api_error(error)}). Check that "
                        f"the bucket gs://{bucket} exists (gcloud storage buckets create gs://{bucket}) and that your "
                        "account may write to it, or give another --pipeline-root.") from None
    try:
        blob.delete()
    except Exception:  # A write-only account: the probe stays, harmless.
        pass


@dataclasses.dataclass
class UploadReport:
    """What upload_audio did; `lines()` is what the command prints."""

    destination: str = ""  # gs:// folder holding the uploaded copies ('' when nothing was local).
    uploaded: int = 0
    uploaded_bytes: int = 0
    skipped: int = 0  # Already there with the same checksum.
    skipped_bytes: int = 0
    passed_through: list = dataclasses.field(default_factory=list)  # gs:// globs used as they are.
    fingerprint: str = ""  # Digest of the copies' names and MD5s ('' when nothing was local).

    @property
    def files(self):
        return self.uploaded + self.skipped

    def lines(self):
        lines = []
        if self.files:
            lines.append(f"upload audio: {self.files} local files -> {self.destination}: uploaded {self.uploaded} "
                         f"({_size(self.uploaded_bytes)}), skipped {self.skipped} already there with the same "
                         f"checksum ({_size(self.skipped_bytes)}).")
        for pattern in self.passed_through:
            lines.append(f"upload audio: {pattern} is used as it is.")
        return lines


def _size(n_bytes):
    for unit in ("B", "kB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.0f} {unit}" if unit == "B" else f"{n_bytes:.1f} {unit}"
        n_bytes /= 1000.0


def pattern_base(pattern):
    """The folder part of a glob before its first wildcard: 'a/b/*/c*.wav' -> 'a/b'; 'a/x.wav' -> 'a'."""
    parts = pattern.split(os.sep)
    for index, part in enumerate(parts):
        if _GLOB_CHARS.search(part):
            return os.sep.join(parts[:index]) or os.sep
    return os.path.dirname(pattern) or "."


def match_local(patterns):
    """Files matched by local globs (recursive '**'), as sorted absolute paths.

    Returns (files, base): base is the deepest folder holding every pattern's non-glob part.
    Raises StepError naming the patterns that match no file.
    """
    files, bases, empty = set(), [], []
    for pattern in patterns:
        absolute = os.path.abspath(os.path.expanduser(pattern))
        matched = [path for path in glob.glob(absolute, recursive=True) if os.path.isfile(path)]
        if not matched:
            empty.append(pattern)
        files.update(matched)
        bases.append(pattern_base(absolute))
    if empty:
        raise _bad_input("upload audio", f"no file matches {', '.join(map(repr, empty))}. Check the path and quote "
                        "the glob so that your shell does not expand it (--audio 'folder/*.wav').")
    return sorted(files), os.path.commonpath(bases)


def file_md5(path, chunk_bytes=1 << 20):
    """Base64 MD5 of a file, as Cloud Storage reports it (blob.md5_hash)."""
    digest = hashlib.md5()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_bytes), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


def file_crc32c(path, chunk_bytes=1 << 20):
    """Base64 CRC32C of a file, as Cloud Storage reports it (blob.crc32c; composite objects have no MD5)."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(chunk_bytes), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


def same_contents(path, md5, blob):
    """Whether `blob` (listed, or None) holds the bytes of local `path` (whose MD5 is `md5`)."""
    if blob is None or blob.size != os.path.getsize(path):
        return False
    if blob.md5_hash:
        return blob.md5_hash == md5
    return bool(blob.crc32c) and blob.crc32c == file_crc32c(path)


def _folder_name(base, files):
    """'<base folder name>-<12 hex digits of the file list>': one folder per set of local files."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", os.path.basename(base.rstrip(os.sep))).strip("-.") or "audio"
    digest = hashlib.sha256("\0".join(files).encode("utf-8")).hexdigest()[:12]
    return f"{slug}-{digest}"


def upload_audio(pattern, destination_prefix, client=None):
    """Uploads the local files matched by `pattern` to Cloud Storage for a remote pipeline.

    Args:
        pattern: Glob(s), comma-separated; local ones ('**' recursive) are uploaded, gs:// ones
            (or other URLs) are passed through (a gs:// one must match some file).
        destination_prefix: gs://BUCKET/PATH; the files go to
            `<prefix>/<base folder name>-<digest of the file list>/<path below the base>`, where the
            base is the folder holding the patterns' non-glob parts. Files already there with
            the same MD5 (or CRC32C) are skipped, changed ones are uploaded again.
        client: a google.cloud.storage.Client (default: a new one).

    Returns:
        (gs_pattern, UploadReport). gs_pattern (comma-separated if several) matches exactly the
        uploaded copies plus any gs:// globs given.

    Raises:
        SubmitError('upload audio', ...): a local glob matches no file, a gs:// one matches none
        (exit_status 2), or Cloud Storage refused a request (1).
    """
    parts = split_patterns(pattern)
    if not parts:
        raise _bad_input("upload audio", "the audio pattern is empty: give a glob of audio files, e.g. "
                        "--audio 'folder/*.wav'.")
    local = [part for part in parts if not is_url(part)]
    remote = [part for part in parts if is_url(part)]
    report = UploadReport(passed_through=remote)
    if local or any(part.startswith("gs://") for part in remote):
        client = client or storage_client()
    for part in remote:
        if part.startswith("gs://"):
            check_gs_pattern(part, client)
    result = list(remote)
    if local:
        files, base = match_local(local)
        folder = join(destination_prefix, _folder_name(base, files))
        result.insert(0, join(folder, "**"))
        _upload(files, base, folder, client, report)
    return ",".join(result), report


def _upload(files, base, folder, client, report):
    bucket_name, prefix = split_gs_url(folder)
    bucket = client.bucket(bucket_name)
    try:
        existing = {blob.name: blob for blob in client.list_blobs(bucket_name, prefix=prefix + "/")}
    except Exception as error:
        raise SubmitError("upload audio", f"cannot list {folder} ({_api_error(error)}). Check that the bucket exists "
                        "and that your account may read and write it.") from None
    names = {path: prefix + "/" + os.path.relpath(path, base).replace(os.sep, "/") for path in files}
    checksums = {path: file_md5(path) for path in files}
    to_upload = []
    for path in files:
        if same_contents(path, checksums[path], existing.get(names[path])):
            report.skipped += 1
            report.skipped_bytes += os.path.getsize(path)
        else:
            to_upload.append(path)

    def upload(path):
        bucket.blob(names[path]).upload_from_filename(path)
        return path

    with concurrent.futures.ThreadPoolExecutor(max_workers=UPLOAD_THREADS) as pool:
        futures = {pool.submit(upload, path): path for path in to_upload}
        for future in concurrent.futures.as_completed(futures):
            path = futures[future]
            try:
                future.result()
            except Exception as error:
                for other in futures:
                    other.cancel()
                raise SubmitError("upload audio", f"uploading {path} to gs://{bucket_name}/{names[path]} failed "
                                f"({_api_error(error)}); files already uploaded are kept and skipped on the next "
                                "try.") from None
            report.uploaded += 1
            report.uploaded_bytes += os.path.getsize(path)

    # The folder must hold exactly these files: '**' matches all of it.
    wanted = set(names.values())
    found = {blob.name for blob in client.list_blobs(bucket_name, prefix=prefix + "/") if not blob.name.endswith("/")}
    if found != wanted:
        extra = sorted(found - wanted)[:5]
        missing = sorted(wanted - found)[:5]
        raise SubmitError("upload audio", f"{folder} should hold exactly the {len(wanted)} uploaded files but has "
                        f"others {extra} / lacks {missing}: something else writes there. Remove the others, or "
                        "give another --pipeline-root.")
    digest = hashlib.sha256()
    for path in files:
        digest.update(f"{names[path]}\0{checksums[path]}\0".encode("utf-8"))
    report.destination = folder + "/"
    report.fingerprint = digest.hexdigest()[:16]


def check_gs_pattern(pattern, client):
    """StepError unless the gs:// glob matches some object (with the pipeline's matcher, Beam's)."""
    bucket_name, name = split_gs_url(pattern)
    match = _GLOB_CHARS.search(name)
    prefix = name[:match.start()] if match else name
    try:
        from apache_beam.io.filesystem import FileSystem

        regex = re.compile(FileSystem.translate_pattern(pattern))
    except ImportError:  # No Beam here: check that the prefix holds something.
        regex = None
    try:
        for blob in client.list_blobs(bucket_name, prefix=prefix):
            url = f"gs://{bucket_name}/{blob.name}"
            if not blob.name.endswith("/") and (regex is None or regex.match(url)):
                return
    except Exception as error:
        raise SubmitError("upload audio", f"cannot list {pattern} ({_api_error(error)}). Check the bucket and your "
                        "access to it.") from None
    raise _bad_input("upload audio", f"no file matches {pattern!r}. Check the path ('*' stays within a folder, "
                    "'**' crosses folders).")


# ---------------------------------------------------------------------------------------------
# Submit


def submit_vertex(template_path, project, region, pipeline_root, parameter_values, display_name,
                  service_account=None, enable_caching=True, labels=None, experiment=None, job_id=None):
    """Submits the compiled pipeline to Vertex AI Pipelines; returns the PipelineJob.

    Raises:
        SubmitError('submit to Vertex AI', ...): the API refused the job.
    """
    from google.cloud import aiplatform

    try:
        aiplatform.init(project=project, location=region)
        job = aiplatform.PipelineJob(display_name=display_name, template_path=template_path, job_id=job_id,
                                     pipeline_root=pipeline_root, parameter_values=parameter_values,
                                     enable_caching=enable_caching, labels=labels)
        job.submit(service_account=service_account, experiment=experiment)
    except Exception as error:
        raise SubmitError("submit to Vertex AI", f"{_api_error(error)}. Check --project/--region, that the Vertex AI "
                        "API is enabled and that your account (or --service-account) may run pipelines.") from None
    print(f"Submitted to Vertex AI: {getattr(job, 'resource_name', '')}")
    try:
        print(f"View it at {job._dashboard_uri()}")
    except Exception:  # The console link is a convenience of the SDK.
        pass
    return job


def submit_kfp(template_path, host, parameter_values, experiment_name=None, run_name=None, enable_caching=True,
               pipeline_root=None, service_account=None):
    """Starts a run of the compiled pipeline on the Kubeflow Pipelines API at `host`; returns the run.

    Raises:
        SubmitError('submit to Kubeflow', ...): the API could not be reached or refused the run.
    """
    import kfp

    try:
        client = kfp.Client(host=host)
        run = client.create_run_from_pipeline_package(
            template_path, arguments=parameter_values, run_name=run_name, experiment_name=experiment_name,
            enable_caching=enable_caching, pipeline_root=pipeline_root, service_account=service_account)
    except Exception as error:
        raise SubmitError("submit to Kubeflow", f"{_api_error(error)}. Check --kfp-host {host} (the Kubeflow "
                        "Pipelines API, reachable from here) and your access to it.") from None
    run_id = getattr(run, "run_id", "")
    print(f"Submitted to Kubeflow: run {run_id}")
    print(f"View it at {host.rstrip('/')}/#/runs/details/{run_id}")
    return run
