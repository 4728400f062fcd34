r"""`ddsp_pipeline submit`: send the clarinet pipeline to Vertex AI Pipelines or Kubeflow.

    ddsp_pipeline submit --vertex --project P --region us-central1 --pipeline-root gs://B/ddsp \
        --audio '/data/clarinet/*.wav' --preset full --image us-docker.pkg.dev/P/ddsp/ddsp-pipeline:0.1.0
    ddsp_pipeline submit --kfp-host https://HOST --pipeline-root gs://B/ddsp --audio 'gs://B/audio/*.wav'

What it does, in order; any failure stops it with a message naming the step and the cause,
and exit status 2 for bad flags or input (nothing submitted), 1 when Cloud Storage or the
pipelines API failed:

1. check flags: exactly one of --vertex / --kfp-host; --project, --region and a gs://
   --pipeline-root for Vertex; a known --preset; shipped gin files only (the remote steps
   cannot read a file on this machine); images a cluster can pull (a digest-pinned --image
   needs --cpu-image and --dataflow-worker-image, which cannot be derived from a digest).
2. template: compiles the pipeline from this checkout into a temporary YAML for the target
   (--vertex: a Vertex AI accelerator type; --kfp-host: a Kubernetes GPU resource, node
   selectors, tolerations) with --image as the train step's (CUDA) image (default
   ddsp-pipeline:0.1.0), its tag + '-cpu' as the other steps' image and its tag + '-dataflow'
   as the Dataflow workers' (each pinned to its digest where one is found), so what runs is
   always the code of this checkout; `--template FILE` submits an already compiled YAML (e.g.
   pipelines/clarinet.yaml) unchanged.
3. connect (Kubeflow): the API's healthz, with the sign-in flags (kubeflow.py: --kfp-namespace,
   --kfp-token-file, --kfp-cookies-file, --kfp-iap-client-id, --kfp-ssl-ca-cert): a refusal
   says which flag to give; a backend older than Kubeflow Pipelines 2.3.0 is refused (its
   launcher cannot run the non-root images' steps), one that does not say its version warned about.
4. check pipeline root: writes and deletes a small object under a gs:// pipeline root.
5. upload audio: local files named by --audio are copied to
   `<pipeline root>/inputs/audio/<folder>-<digest of the file list>/` (their layout below the
   pattern's folder kept), skipping files already there with the same MD5; the pipeline gets
   a gs:// glob of exactly those copies, and `audio_fingerprint`, a digest of their names and
   checksums, so that kfp's cache is not reused when a file's contents change. The same
   files go to the same folder (re-submitting uploads nothing); a different set of files goes
   to a new folder, so a folder never mixes sets and nothing is ever deleted. gs:// globs are
   passed through unchanged (checked to match some file); their listing (names, sizes,
   generations) goes into `audio_fingerprint`, so a rewritten object is prepared again.
6. submit: aiplatform.PipelineJob(...).submit() or kfp.Client(...).create_run_from_pipeline_package().
   --pipeline-root also goes in as the pipeline parameter `pipeline_root` (Kubeflow leaves
   kfp's pipeline-root placeholder unresolved in a step's arguments), and, on Vertex,
   --service-account as the parameter `service_account` (the train step's custom job of
   --train-replicas > 1 runs as it, not as the Vertex AI service agent), each when the
   template declares it.

The flags of the pipeline's parameters are pipeline_flags.py's (shared with `run`), the image
and GPU flags settings_flags.py's (shared with `compile`); the upload is upload.py, the two
clients vertex.py and kubeflow.py.

Only parameters given on the command line are passed; the others keep the pipeline's
defaults (no --audio: the clarinet material bundled in the image, evaluated on its validation clarinet).
"""

import glob
import os
import re
import sys
import tempfile

from ddsp_core.steps.steps import StepError
from ddsp_core.steps.steps import split_commas as split_patterns
from ddsp_core.io.storage import is_url, join

from pipelines import images, kubeflow, pipeline_flags, settings_flags
from pipelines.fingerprint import audio_fingerprint
from pipelines.submit_errors import SubmitError, bad_input
from pipelines.upload import check_pipeline_root, storage_client, upload_audio
from pipelines.vertex import submit_vertex

PROG = "ddsp_pipeline submit"
AUDIO_FOLDER = "inputs/audio"  # Under the pipeline root.


def add_arguments(parser):
    """Registers the submit flags on `parser` (an argparse parser or subparser)."""
    what = pipeline_flags.add_arguments(parser)
    what.add_argument("--template", default=None,
                      help="Submit this compiled pipeline YAML instead of compiling one from this checkout.")
    settings_flags.add_arguments(parser, with_target=False)

    where = parser.add_argument_group("where to run it")
    where.add_argument("--vertex", action="store_true", help="Submit to Vertex AI Pipelines.")
    where.add_argument("--project", default=None, help="Google Cloud project (Vertex; required).")
    where.add_argument("--region", default=None, help="Vertex AI region, e.g. us-central1 (Vertex; required).")
    where.add_argument("--kfp-host", default=None, help="Submit to the Kubeflow Pipelines API at this URL.")
    where.add_argument("--pipeline-root", default=None,
                       help="Where the run's artifacts go, gs://BUCKET/PATH (required for Vertex and for local "
                            "--audio); uploaded audio goes to <pipeline root>/inputs/audio/.")
    where.add_argument("--service-account", default=None,
                       help="Service account the steps run as (Vertex: an email, also the train step's custom job's "
                            "with --train-replicas > 1; Kubeflow: a Kubernetes service account of the namespace).")
    where.add_argument("--experiment", default=None, help="Experiment to file the run under.")
    where.add_argument("--run-name", default=None,
                       help="Kubeflow: the run's name. Vertex: the job id (lowercase letters, digits, '-').")
    where.add_argument("--display-name", default=None,
                       help="Vertex: the job's display name (default: ddsp-clarinet). Kubeflow: the run's name "
                            "when --run-name is not given.")
    where.add_argument("--label", action="append", default=[], metavar="KEY=VALUE",
                       help="Vertex: a label on the job. Repeatable.")
    kubeflow.add_arguments(parser.add_argument_group(
        "Kubeflow sign-in (with --kfp-host; secrets are read from files, not taken on the command line)"))


def main(args):
    """Runs `ddsp_pipeline submit` for parsed `args`; returns the exit status (0, 1 or 2).

    Messages go to stderr as 'ddsp_pipeline submit: error: ...'.
    """
    try:
        check_args(args)
        access = kubeflow.access_from_args(args, os.environ) if args.kfp_host else None
        with tempfile.TemporaryDirectory(prefix="ddsp-submit-") as temporary:
            template = prepare_template(args, temporary)
            parameters = parameter_values(args)
            check_template_parameters(template, parameters)
            declared = template_parameters(template)
            kfp_client = None
            if access:  # Before anything is uploaded: the API answers, and its version can run the steps.
                kfp_client, _ = kubeflow.connect(access, skip_version_check=args.kfp_skip_version_check)
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
            if pipeline_flags.eval_audio_parameter(args.audio, args.eval_audio) == "":
                parameters["eval_audio_pattern"] = ""
            if "checkpoint_dir" in declared:  # Templates compiled before it lack it.
                parameters.update(checkpoint_parameters(args, parameters))
            # After the checkpoint folder's digest: where things go does not change what is trained.
            parameters.update(placement_parameters(args, declared))
            if args.vertex:
                submit_vertex(template, args.project, args.region, args.pipeline_root, parameters,
                              display_name=args.display_name or _pipeline_name(), service_account=args.service_account,
                              enable_caching=not args.no_cache, labels=parse_labels(args.label),
                              experiment=args.experiment, job_id=args.run_name)
            else:
                kubeflow.submit_kfp(kfp_client, template, access.host, parameters, experiment_name=args.experiment,
                                    run_name=args.run_name or args.display_name, enable_caching=not args.no_cache,
                                    pipeline_root=args.pipeline_root, service_account=args.service_account,
                                    namespace=access.namespace)
    except StepError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return getattr(error, "exit_status", 1)
    return 0


def check_args(args):
    """Raises SubmitError (exit status 2, saying what to do) for flags that cannot work together."""
    if bool(args.vertex) == bool(args.kfp_host):
        raise bad_input("check flags", "give exactly one of --vertex (Vertex AI Pipelines) and "
                        "--kfp-host URL (Kubeflow Pipelines).")
    root = args.pipeline_root
    if args.vertex and kubeflow.given_flags(args):
        raise bad_input("check flags", f"{', '.join(kubeflow.given_flags(args))} sign in to Kubeflow (--kfp-host); "
                        "Vertex AI uses your Google credentials (gcloud auth application-default login).")
    if args.vertex:
        missing = [flag for flag, value in (("--project", args.project), ("--region", args.region),
                                            ("--pipeline-root", root)) if not value]
        if missing:
            raise bad_input("check flags", f"--vertex needs {', '.join(missing)} (e.g. --project my-project "
                            "--region us-central1 --pipeline-root gs://my-bucket/ddsp).")
        if args.run_name and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,127}", args.run_name):
            raise bad_input("check flags", f"--run-name {args.run_name!r} cannot be a Vertex AI job id: use lowercase "
                            "letters, digits and '-' (at most 128, starting with a letter or digit), or leave it "
                            "out for a generated one.")
        if not root.startswith("gs://"):
            raise bad_input("check flags", f"--pipeline-root {root!r} is not a gs:// path; Vertex AI writes "
                            "the artifacts to Cloud Storage: give --pipeline-root gs://BUCKET/PATH.")
    try:
        pipeline_flags.check(args)
    except ValueError as error:
        raise bad_input("check flags", str(error)) from None
    from pipelines.clarinet import SettingsError

    if args.template and settings_flags.given(args):
        raise bad_input("check flags", "--image and the GPU flags apply when the pipeline is compiled; a "
                        "--template is submitted as it is. Give one of them (or recompile the template with "
                        "`ddsp_pipeline compile --image IMAGE ... --output FILE`).")
    if not args.template:
        try:
            settings = settings_flags.settings_from(args, target=_target(args))
        except SettingsError as error:
            raise bad_input("check flags", str(error)) from None
    for path in args.gin_file:
        check_gin_file(path)
    parse_labels(args.label)
    local_audio = [part for part in split_patterns(",".join(filter(None, [args.audio, args.eval_audio])))
                   if not is_url(part)]
    if local_audio and not (root or "").startswith("gs://"):
        raise bad_input(
            "upload audio", f"the local audio {', '.join(map(repr, local_audio))} must be uploaded for the "
            "cluster to read it, and submit uploads only to a gs:// pipeline root: give --pipeline-root "
            "gs://BUCKET/PATH, or copy the files where the cluster can read them and pass that glob with --audio.")
    if not args.template:
        check_step_images(settings, args)


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
        raise bad_input("check flags", f"--gin-file {path!r} is a file on this machine, which the remote steps "
                        "cannot read: pass its bindings with --gin-param, or use a shipped gin file "
                        f"({', '.join(shipped)}).")
    raise bad_input("check flags", f"--gin-file {path!r} is not a shipped gin file; shipped: "
                    f"{', '.join(shipped)}.")


def parse_labels(items):
    """['k=v', ...] -> {'k': 'v'}; SubmitError for an item without '='."""
    labels = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise bad_input("check flags", f"--label {item!r} is not KEY=VALUE.")
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
    from ddsp_core.steps import resume as resume_lib

    try:
        found, line = resume_lib.parameters_for_run(args.pipeline_root, parameters, resume=not args.no_resume)
    except Exception as error:  # Listing gs:// needs credentials; the run can go on without the line.
        if args.no_resume:
            raise
        folder = resume_lib.checkpoint_dir(args.pipeline_root, parameters)
        found, line = {"checkpoint_dir": folder}, f"train: checkpoints go to {folder} (cannot look into it here: " \
                                                  f"{type(error).__name__})."
    print(line)
    return found


def parameter_values(args):
    """The pipeline parameters the user set on the command line (audio added after upload);
    beam_pipeline_options is a list, one Beam option a string."""
    values = {}
    if args.preset is not None:
        values["preset"] = args.preset
    if args.num_steps is not None:
        values["num_steps"] = args.num_steps
    if args.batch_size is not None:
        values["batch_size"] = args.batch_size
    if args.crepe_capacity is not None:
        values["crepe_capacity"] = args.crepe_capacity
    if args.sample_rate is not None:
        values["sample_rate"] = args.sample_rate
    if args.seed is not None:
        values["seed"] = args.seed
    if args.gin_file:
        values["gin_files"] = list(args.gin_file)
    if args.gin_param:
        values["gin_params"] = list(args.gin_param)
    if args.beam_options:
        values["beam_pipeline_options"] = list(args.beam_options)
    return values


def _pipeline_name():
    from pipelines.clarinet import PIPELINE_NAME

    return PIPELINE_NAME


def _target(args):
    """The pipeline target a submit goes to: 'vertex' (--vertex) or 'kubeflow' (--kfp-host)."""
    return "vertex" if args.vertex else "kubeflow"


def step_images(settings):
    """{'image': the train step's (CUDA) image, 'cpu_image': the other steps' image,
    'dataflow_worker_image': the Dataflow workers'} that `settings` compile to, each as given or
    derived from the image's tag ('' when it cannot be: a digest). 'cpu_image' only where
    PipelineSettings has it."""
    from ddsp_core.steps.dataflow import worker_image_for

    found = {"image": settings.image}
    if hasattr(settings, "cpu_image"):
        from components.image import cpu_image_for

        found["cpu_image"] = cpu_image_for(settings.image) if settings.cpu_image is None else settings.cpu_image
    found["dataflow_worker_image"] = (worker_image_for(settings.image) if settings.dataflow_worker_image is None
                                      else settings.dataflow_worker_image)
    return found


_IMAGE_FLAGS = {"image": "--image", "cpu_image": "--cpu-image", "dataflow_worker_image": "--dataflow-worker-image"}


def check_step_images(settings, args):
    """SubmitError (exit status 2) unless every step image of `settings` is one a cloud cluster
    can pull; a digest-pinned --image needs --cpu-image and --dataflow-worker-image (a digest
    names one image: the others cannot be derived from it)."""
    found = step_images(settings)
    missing = [_IMAGE_FLAGS[field] for field, reference in found.items() if not reference]
    if missing:
        raise bad_input("check image", f"--image {settings.image} is pinned by digest, from which the "
                        f"{' and the '.join(_IMAGE_NAMES[flag] for flag in missing)} cannot be derived: give "
                        f"{' and '.join(missing)} too (`ddsp_pipeline build-image` prints all three pinned "
                        "references), or give --image by tag (REGISTRY/ddsp-pipeline:TAG).")
    for field, reference in found.items():
        flag = _IMAGE_FLAGS[field]
        if field == "image":
            where = "--image" if args.image else "no --image given, and the default"
        else:
            where = flag if getattr(args, field, None) else f"{flag} (derived from --image's tag)"
        check_pullable_image(reference, where)


_IMAGE_NAMES = {"--cpu-image": "CPU image (prepare, eval, sample, export)",
                "--dataflow-worker-image": "Dataflow worker image"}


def prepare_template(args, folder):
    """The YAML to submit: --template as given (its images checked), else a fresh compile into
    `folder` with each step image (step_images) pinned to its digest where one can be found
    (images.pin)."""
    if args.template:
        if not os.path.isfile(args.template):
            raise bad_input("template", f"--template {args.template!r} is not a file. Write one with "
                            "`ddsp_pipeline compile --output FILE`, or leave --template out to compile now.")
        for image in template_images(args.template):
            check_pullable_image(image, f"--template {args.template}")
        return args.template
    import dataclasses

    from pipelines.clarinet import compile_pipeline

    settings = settings_flags.settings_from(args, target=_target(args))
    pinned = {}
    for field, reference in step_images(settings).items():  # Each image by its own tag's digest.
        pinned[field], said = images.pin(reference)
        print(said)
    path = os.path.join(folder, "clarinet.yaml")
    try:
        return compile_pipeline(path, dataclasses.replace(settings, **pinned))
    except Exception as error:  # kfp's compiler.
        raise SubmitError("template", f"compiling the pipeline failed: {error}") from None


def check_pullable_image(image, where):
    """SubmitError (exit status 2) for an image a cloud cluster cannot pull, saying what to give."""
    try:
        images.check_pullable(image)
    except images.ImageError as error:
        raise bad_input("check image", f"{where}: {error}") from None


def template_images(template_path):
    """The container images a compiled YAML's steps run in (the CUDA image of train, the CPU
    image of the others), and the prepare step's Dataflow worker image when it names one."""
    import yaml

    with open(template_path) as file:
        spec = next(yaml.safe_load_all(file))
    executors = spec.get("deploymentSpec", {}).get("executors", {})
    found = {executor["container"]["image"] for executor in executors.values() if "container" in executor}
    prepare = spec.get("root", {}).get("dag", {}).get("tasks", {}).get("prepare-tfrecord", {})
    worker = prepare.get("inputs", {}).get("parameters", {}).get("worker_image", {})
    worker = worker.get("runtimeValue", {}).get("constant") if isinstance(worker, dict) else None
    if isinstance(worker, str) and worker:
        found.add(worker)
    return sorted(found)


def template_parameters(template_path):
    """Names of the pipeline parameters a compiled YAML declares."""
    import yaml

    with open(template_path) as file:
        spec = yaml.safe_load(file)
    return set(spec.get("root", {}).get("inputDefinitions", {}).get("parameters", {}))


def placement_parameters(args, declared):
    """The pipeline parameters saying where the run's things go, for those the template declares
    (`declared`): 'pipeline_root' (--pipeline-root: kfp's pipeline-root placeholder reaches a
    step unresolved on Kubeflow) and, on Vertex, 'service_account' (--service-account: the train
    step's custom job runs as it; without it, as the Vertex AI service agent)."""
    values = {}
    if args.pipeline_root and "pipeline_root" in declared:
        values["pipeline_root"] = args.pipeline_root
    if args.vertex and args.service_account and "service_account" in declared:
        values["service_account"] = args.service_account
    return values


def check_template_parameters(template_path, parameters):
    """SubmitError (exit status 2) unless the YAML declares every parameter to be passed."""
    try:
        known = template_parameters(template_path)
    except Exception as error:
        raise bad_input("template", f"{template_path} is not a compiled pipeline YAML ({error}).") from None
    unknown = sorted((set(parameters) | {"audio_pattern", "audio_fingerprint"}) - known)
    if unknown:
        raise bad_input("template", f"{template_path} has no parameter(s) {', '.join(unknown)}; it declares "
                        f"{', '.join(sorted(known)) or 'none'}. Is it the clarinet pipeline?")
