"""The command-line flags of the compiled pipeline's settings (image, GPU, Kubernetes scheduling),
defined once for `ddsp_pipeline compile` and `ddsp_pipeline submit`, and the
`clarinet.PipelineSettings` they make."""

from components.image import DEFAULT_IMAGE


def add_arguments(parser, with_target=True):
    """Registers the settings flags on `parser`; `--target` only where the command has no other
    way to say it (submit chooses by --vertex / --kfp-host)."""
    group = parser.add_argument_group("pipeline settings (compiled into the YAML)")
    group.add_argument("--image", default=None,
                       help=f"The components' container image, e.g. us-docker.pkg.dev/P/ddsp/ddsp-pipeline:0.1.0 "
                            f"(default: {DEFAULT_IMAGE}).")
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


def given(args):
    """Whether any settings flag was given (a --template is submitted as compiled: none may be)."""
    return bool(args.image or args.accelerator is not None or args.accelerator_count != 1 or args.node_selector
                or args.toleration or args.train_replicas != 1 or args.train_machine_type)


def settings_from(args, target=None):
    """The `clarinet.PipelineSettings` of parsed flags (target: the submit's; else --target).

    Raises:
        clarinet.SettingsError: a flag's value cannot work, with what to give instead.
    """
    from pipelines.clarinet import PipelineSettings, SettingsError, Toleration

    selector = []
    for item in args.node_selector:
        label, sign, value = item.partition("=")
        if not sign or not label.strip() or not value.strip():
            raise SettingsError(f"--node-selector {item!r} is not LABEL=VALUE, e.g. "
                                "cloud.google.com/gke-accelerator=nvidia-l4.")
        selector.append((label.strip(), value.strip()))
    return PipelineSettings(image=(args.image or DEFAULT_IMAGE).strip(), target=target or args.target,
                            accelerator=args.accelerator, accelerator_count=args.accelerator_count,
                            node_selector=tuple(selector),
                            tolerations=tuple(Toleration.parse(item) for item in args.toleration),
                            train_replicas=args.train_replicas, train_machine_type=args.train_machine_type)
