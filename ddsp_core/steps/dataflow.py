"""The prepare step on a remote Beam runner (Dataflow): where it writes, and the options it runs with.

    check_options(options)                          a list of Beam options, or ValueError
    output_dir(options, uri, path)                  the Dataset's path (local runner) or its URI (remote)
    complete_options(options, environ, root, image) Dataflow's project, region, temp/staging, worker image
    resolved(value)                                 '' for a kfp placeholder the backend left unresolved
    missing_options(options)                        what Dataflow still lacks (for a clear error)
    worker_image_for(image)                         the Dataflow worker image of a step image

On kfp the Dataset artifact has a URI (gs://bucket/...) and a local path (/gcs/bucket/..., a
FUSE mount on Vertex AI; a folder the launcher uploads afterwards on Kubeflow). The local
runner writes to the path, as every step does; Dataflow's workers have no such mount, so a
remote runner writes to the URI, and the step reads the manifest back from there.

On Dataflow, options that are not given are filled in (an explicit option always wins):
`--project` from the project ID the pipeline passes in (on Vertex AI, its placeholder
`{{$.pipeline_google_cloud_project_id}}`, resolved by the service), else the environment of the
step (GOOGLE_CLOUD_PROJECT, gcloud's CLOUDSDK_CORE_PROJECT; Vertex AI's CLOUD_ML_PROJECT_ID holds
the project *number*, which Beam refuses: a number is never passed on, and when it is all there
is, the step stops saying how to give the ID); `--region` from the environment (Vertex AI's
CLOUD_ML_REGION, GOOGLE_CLOUD_REGION, CLOUDSDK_COMPUTE_REGION); `--temp_location` and
`--staging_location` under the pipeline root (`<root>/dataflow/tmp`, `<root>/dataflow/staging`;
the Dataset's bucket when the root is not on gs://), and `--sdk_container_image` from the
pipeline's Dataflow worker image (`worker_image_for`: the `dataflow-worker` image built by
docker/dataflow-worker.Dockerfile, which has Beam's worker boot entrypoint). The environment is
passed in by the caller, never read here.

A value the pipeline passes as a kfp placeholder (`{{$.pipeline_root}}`, the project ID's)
reaches the step as that literal text on a backend that does not resolve it (Kubeflow leaves
`{{$.pipeline_root}}` so): `resolved` turns it into '' (not given), never a path or a project.

Everything here is a pure function of its arguments; apache_beam is imported only to parse
options the way Beam does (`--name=value` or `--name value`, one option or value an item).
"""

import posixpath
import re

DATAFLOW_RUNNERS = ("dataflowrunner", "dataflow", "testdataflowrunner")
# The environment variables each derived option is read from, first set first. Vertex AI's
# CLOUD_ML_PROJECT_ID holds the project number: it is read, but a number is never used.
PROJECT_ENV = ("CLOUD_ML_PROJECT_ID", "GOOGLE_CLOUD_PROJECT", "CLOUDSDK_CORE_PROJECT")
REGION_ENV = ("CLOUD_ML_REGION", "GOOGLE_CLOUD_REGION", "CLOUDSDK_COMPUTE_REGION")
TEMP_FOLDER = "dataflow/tmp"
STAGING_FOLDER = "dataflow/staging"
# A kfp placeholder ({{$.pipeline_root}}, {{$.pipeline_google_cloud_project_id}}, ...) left as text.
_PLACEHOLDER = re.compile(r"\{\{\$.*\}\}")
# docker/dataflow-worker.Dockerfile's image of a step image IMAGE:TAG is IMAGE:TAG<suffix>.
WORKER_TAG_SUFFIX = "-dataflow"


def check_options(options):
    """`options` as a list of Beam options (str), empty items dropped; ValueError for a string.

    One item is one option (`--runner=DataflowRunner`) or one token of it (`--region`,
    `us-central1`), so a value may contain commas. A plain string is refused rather than split
    on commas (`'--runner=DataflowRunner,--region=r'` would be one broken option).
    """
    if isinstance(options, (str, bytes)):
        raise ValueError(
            f"beam_pipeline_options must be a list of options, one option an item, e.g. "
            f"['--runner=DataflowRunner', '--region=us-central1'], not the string {options!r}. "
            "With ddsp_pipeline give each option with its own --beam-option.")
    options = list(options or ())
    wrong = [item for item in options if not isinstance(item, str)]
    if wrong:
        raise ValueError(f"beam_pipeline_options holds {wrong[0]!r}, not a string: give each option as a string, "
                         "e.g. '--num_workers=4'.")
    return [item.strip() for item in options if item.strip()]


def _parsed(options):
    from apache_beam.options.pipeline_options import PipelineOptions

    return PipelineOptions(list(options))


def _view(options, name):
    from apache_beam.options import pipeline_options

    return _parsed(options).view_as(getattr(pipeline_options, name))


def runner(options):
    """The runner the options name ('' for none: Beam's default, the local runner)."""
    return _view(options, "StandardOptions").runner or ""


def is_local(options):
    """Whether the job runs in this process's machine (no runner, DirectRunner, ...)."""
    from ddsp_core.prepare.prepare_tfrecord_lib import LOCAL_RUNNERS

    name = runner(options)
    return not name or name.lower() in LOCAL_RUNNERS


def is_dataflow(options):
    return runner(options).lower() in DATAFLOW_RUNNERS


def output_dir(options, uri, path):
    """Where the prepare job writes the Dataset: `path` on the local runner, else `uri`.

    Args:
        options: Beam options (a list).
        uri: The Dataset artifact's URI, e.g. gs://bucket/root/.../dataset ('' for none).
        path: Its local path, e.g. /gcs/bucket/root/.../dataset on Vertex AI.

    Raises:
        ValueError: a remote runner and no gs:// URI (its workers could not reach the folder).
    """
    if is_local(options):
        return path or uri
    if str(uri).startswith("gs://"):
        return uri
    raise ValueError(
        f"The prepare job runs on {runner(options)}, whose workers cannot write to {path or uri!r}: the Dataset "
        f"must be on Cloud Storage, but its URI is {uri!r}. Give the pipeline a gs:// pipeline root "
        "(--pipeline-root gs://BUCKET/ddsp), or run the prepare job on the local runner (no --runner option).")


def _first(environ, names):
    for name in names:
        value = resolved(environ.get(name, ""))
        if value:
            return value, name
    return "", ""


def resolved(value):
    """`value` stripped, or '' when it is a kfp placeholder (`{{$...}}`) that reached the step as
    text because the backend did not resolve it: such a value counts as not given."""
    text = str(value or "").strip()
    return "" if _PLACEHOLDER.search(text) else text


def effective_pipeline_root(kfp_root, given_root=""):
    """The pipeline root the step works under: kfp's `{{$.pipeline_root}}` as the backend
    resolved it, else the root passed explicitly (the pipeline's `pipeline_root` parameter,
    which `ddsp_pipeline submit` fills from --pipeline-root); '' for neither."""
    return resolved(kfp_root) or resolved(given_root)


def is_project_number(value):
    """Whether `value` is a Google Cloud project number (all digits), not a project ID."""
    return str(value).strip().isdigit()


def _project_number_error(found):
    return ValueError(
        f"Dataflow needs the project ID, not the project number, which Beam refuses; found only a number: "
        f"{found}. Give the ID as a Beam option: --beam-option=--project=PROJECT_ID (e.g. my-project; "
        "`gcloud projects describe NUMBER --format='value(projectId)'` prints it).")


def _project(project_id, environ):
    """(project ID, where it came from) for Dataflow: the pipeline's `project_id` first, then the
    environment (PROJECT_ENV); project numbers are passed over. ('', '') when none is found.

    Raises:
        ValueError: only project numbers were found (e.g. Vertex AI's $CLOUD_ML_PROJECT_ID).
    """
    candidates = [(resolved(project_id), "the pipeline's project ID")]
    candidates += [(resolved(environ.get(name, "")), f"${name}") for name in PROJECT_ENV]
    numbers = []
    for value, source in candidates:
        if value and is_project_number(value):
            numbers.append(f"{source} is {value}")
        elif value:
            return value, source
    if numbers:
        raise _project_number_error("; ".join(numbers))
    return "", ""


def _bucket_root(url):
    """'gs://bucket/a/b' -> 'gs://bucket'."""
    return "gs://" + url[len("gs://"):].split("/", 1)[0]


def storage_root(pipeline_root, output=""):
    """The gs:// folder Dataflow's temp and staging folders go under: the pipeline root when it
    is on gs://, else the bucket of `output` (the Dataset's URI) when that is; else ''."""
    root = str(pipeline_root or "").rstrip("/")
    if root.startswith("gs://") and len(root) > len("gs://"):
        return root
    if str(output).startswith("gs://"):
        return _bucket_root(output)
    return ""


def complete_options(options, environ, pipeline_root="", worker_image="", output="", project_id=""):
    """`options` with what Dataflow needs and was not given filled in; other runners' unchanged.

    Args:
        options: Beam options (a list); those given are kept, first, as they are.
        environ: The step's environment (a dict, e.g. dict(os.environ)): project and region
            (PROJECT_ENV, REGION_ENV).
        pipeline_root: The pipeline root (gs://...): temp and staging folders under it. An
            unresolved placeholder counts as none (`effective_pipeline_root` picks the root).
        worker_image: The image Dataflow's workers run (`--sdk_container_image`); '' for Beam's.
        output: Where the job writes (the Dataset's URI), for the bucket when the root is not gs://.
        project_id: The project ID the pipeline passes (Vertex AI's placeholder, resolved by the
            service); preferred over the environment. '' or an unresolved placeholder: none.

    Returns:
        (options, derived): the complete list, and {option: where its value came from}.

    Raises:
        ValueError: the project is a number (given, or the only one found): Beam wants the ID.
    """
    options = check_options(options)
    if not is_dataflow(options):
        return options, {}
    cloud = _view(options, "GoogleCloudOptions")
    worker = _view(options, "WorkerOptions")
    added, derived = [], {}

    def add(name, value, source):
        added.append(f"--{name}={value}")
        derived[name] = source

    if cloud.project and is_project_number(cloud.project):
        raise _project_number_error(f"--project={cloud.project}")
    if not cloud.project:
        value, source = _project(project_id, environ)
        if value:
            add("project", value, source)
    if not cloud.region:
        value, name = _first(environ, REGION_ENV)
        if value:
            add("region", value, f"${name}")
    pipeline_root = resolved(pipeline_root)
    root = storage_root(pipeline_root, output)
    if root and not cloud.temp_location and not cloud.staging_location:
        source = "the pipeline root" if root == pipeline_root.rstrip("/") else "the Dataset's bucket"
        add("temp_location", posixpath.join(root, TEMP_FOLDER), source)
        add("staging_location", posixpath.join(root, STAGING_FOLDER), source)
    if worker_image and not worker.sdk_container_image and not worker.worker_harness_container_image:
        add("sdk_container_image", worker_image, "the pipeline's worker image")
    return options + added, derived


def missing_options(options):
    """What a Dataflow job of `options` lacks (a sentence per option; [] when complete or not Dataflow)."""
    if not is_dataflow(options):
        return []
    cloud = _view(options, "GoogleCloudOptions")
    missing = []
    if not cloud.project:
        missing.append(f"--project (not given, and none of ${', $'.join(PROJECT_ENV)} is set)")
    if not cloud.region:
        missing.append(f"--region (not given, and none of ${', $'.join(REGION_ENV)} is set)")
    temp = cloud.temp_location or cloud.staging_location
    if not temp:
        missing.append("--temp_location (not given, and the pipeline root is not on gs://)")
    elif not str(temp).startswith("gs://"):
        missing.append(f"a gs:// --temp_location (got {temp!r})")
    return missing


def tag_variant(image, suffix):
    """The image named by `image`'s tag + `suffix` ('reg/ddsp-pipeline:0.1.0', '-cpu' ->
    'reg/ddsp-pipeline:0.1.0-cpu'; no tag: 'latest' + suffix); '' for an image named by
    digest, which has no tag to derive from."""
    image = str(image or "").strip()
    if not image or "@" in image:
        return ""
    name, _, tag = image.rpartition(":")
    if not name or "/" in tag:  # 'host:5000/name' has no tag: the colon is the port's.
        name, tag = image, "latest"
    return f"{name}:{tag}{suffix}"


def worker_image_for(image):
    """The Dataflow worker image of the step image `image`: its tag + WORKER_TAG_SUFFIX
    ('reg/ddsp-pipeline:0.1.0' -> 'reg/ddsp-pipeline:0.1.0-dataflow'); '' for an image named
    by digest (give --dataflow-worker-image yourself)."""
    return tag_variant(image, WORKER_TAG_SUFFIX)
