"""The command-line flags of the compiled pipeline's settings (images, GPU, CPU and memory,
Kubernetes scheduling), defined once for `ddsp_pipeline compile` and `ddsp_pipeline submit`, and
the `clarinet.PipelineSettings` they make."""

from components.image import DEFAULT_IMAGE

# clarinet.DEFAULT_RESOURCES as the help says them (clarinet imports kfp: not at parser time;
# tests/pipelines/test_resources.py checks they agree).
DEFAULT_RESOURCES_TEXT = ("prepare_tfrecord cpu 4/8, memory 8G/16G; train cpu 4/7, memory 16G/28G; eval, sample "
                          "and export cpu 2/4, memory 8G/16G each")


def add_arguments(parser, with_target=True):
    """Registers the settings flags on `parser`; `--target` only where the command has no other
    way to say it (submit chooses by --vertex / --kfp-host)."""
    group = parser.add_argument_group("pipeline settings (compiled into the YAML)")
    group.add_argument("--image", default=None,
                       help=f"The train step's image (with CUDA), e.g. us-docker.pkg.dev/P/ddsp/ddsp-pipeline:0.1.0 "
                            f"(default: {DEFAULT_IMAGE}); the other steps run its tag + '-cpu', Dataflow's workers "
                            "its tag + '-dataflow', unless given below.")
    group.add_argument("--cpu-image", default=None,
                       help="The image of prepare_tfrecord, eval, sample and export (default: --image's tag + "
                            "'-cpu'); needed with an --image pinned by digest (build-image prints it).")
    group.add_argument("--dataflow-worker-image", default=None,
                       help="The image Dataflow's workers run for the prepare job (default: --image's tag + "
                            "'-dataflow'); needed with an --image pinned by digest (build-image prints it).")
    if with_target:
        group.add_argument("--target", default="vertex", choices=["vertex", "kubeflow"],
                           help="Where the YAML will run: it decides how the train task asks for its GPU "
                                "(default: %(default)s).")
    group.add_argument("--accelerator", default=None,
                       help="The train task's GPU: a Vertex AI accelerator type (default NVIDIA_L4) or, for "
                            "Kubeflow, a Kubernetes resource (default nvidia.com/gpu); '' for none.")
    group.add_argument("--accelerator-count", type=int, default=1, help="GPUs for the train task (default: 1).")
    group.add_argument("--node-selector", action="append", default=[], metavar="LABEL=VALUE",
                       help="Kubeflow: a node label the train pod must run on, e.g. "
                            "cloud.google.com/gke-accelerator=nvidia-l4. Repeatable.")
    group.add_argument("--toleration", action="append", default=[], metavar="KEY[=VALUE][:EFFECT]",
                       help="Kubeflow: a taint of GPU nodes the train pod tolerates, e.g. "
                            "nvidia.com/gpu=present:NoSchedule (effect default NoSchedule). Repeatable.")
    group.add_argument("--train-replicas", type=int, default=1,
                       help="Vertex AI: machines to train on together (MultiWorkerMirroredStrategy); > 1 runs the "
                            "train step as a custom job of that many replicas, each with --accelerator-count GPUs "
                            "(default: 1).")
    group.add_argument("--train-machine-type", default=None,
                       help="Vertex AI, with --train-replicas > 1: each replica's machine type (default: one that "
                            "holds --accelerator-count GPUs of --accelerator, e.g. g2-standard-24 for 2 x NVIDIA_L4).")
    group.add_argument("--resources", action="append", default=[], metavar="STEP=cpu:R/L,memory:R/L",
                       help="A step's CPU and memory, request R and limit L (R <= L; 'cpu:N' for both N), e.g. "
                            "train=cpu:4/7,memory:16G/28G; STEP is prepare_tfrecord, train, eval, sample or export. "
                            "The limit caps the step (and sizes its machine on Vertex AI); the request is what "
                            "Kubernetes reserves to schedule it (Kubeflow only). Defaults fit a g2-standard-8 node: "
                            f"{DEFAULT_RESOURCES_TEXT}. Repeatable.")


def given(args):
    """Whether any settings flag was given (a --template is submitted as compiled: none may be)."""
    return bool(args.image or args.cpu_image or args.dataflow_worker_image or args.accelerator is not None
                or args.accelerator_count != 1 or args.node_selector or args.toleration or args.train_replicas != 1
                or args.train_machine_type or args.resources)


def parse_resources(items):
    """((step, StepResources), ...) of the --resources items; a step given twice takes both, the
    later part winning.

    Raises:
        clarinet.SettingsError: an item that is not STEP=cpu:R/L,memory:R/L, or a request above its limit.
    """
    from pipelines.clarinet import StepResources

    resources = {}
    for item in items or ():
        step, values = StepResources.parse(item, base=resources.get(str(item).partition("=")[0].strip()))
        resources[step] = values
    return tuple(resources.items())


def settings_from(args, target=None):
    """The `clarinet.PipelineSettings` of parsed flags (target: the submit's; else --target).

    Raises:
        clarinet.SettingsError: a flag's value cannot work, with what to give instead.
    """
    from pipelines.clarinet import PipelineSettings, SettingsError, Toleration, cloud_project_id

    selector = []
    for item in args.node_selector:
        label, sign, value = item.partition("=")
        if not sign or not label.strip() or not value.strip():
            raise SettingsError(f"--node-selector {item!r} is not LABEL=VALUE, e.g. "
                                "cloud.google.com/gke-accelerator=nvidia-l4.")
        selector.append((label.strip(), value.strip()))
    target = target or args.target
    return PipelineSettings(image=(args.image or DEFAULT_IMAGE).strip(), target=target,
                            cpu_image=(args.cpu_image or "").strip() or None,
                            dataflow_worker_image=(args.dataflow_worker_image or "").strip() or None,
                            accelerator=args.accelerator, accelerator_count=args.accelerator_count,
                            node_selector=tuple(selector),
                            tolerations=tuple(Toleration.parse(item) for item in args.toleration),
                            train_replicas=args.train_replicas, train_machine_type=args.train_machine_type,
                            resources=parse_resources(args.resources),
                            # Dataflow's --project: the ID Vertex AI fills in (its steps' environment has the number).
                            project_id=cloud_project_id(target))
