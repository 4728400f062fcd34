"""`ddsp_pipeline rehearse`: the compiled pipeline run task by task in podman containers, each
given what Vertex AI or Kubeflow gives a task (pipelines/REHEARSAL.md).

    ddsp_pipeline rehearse --target vertex --image localhost/ddsp-pipeline:0.1.0
    ddsp_pipeline rehearse --target kubeflow --image localhost/ddsp-pipeline:0.1.0 \
        --cpu-image localhost/ddsp-pipeline:0.1.0-cpu --keep

Exit status: 0 every task succeeded, 1 a task failed or would not start (the message names it
and ends with its log), 2 bad command line, podman or an image missing.
"""

import sys


def add_arguments(parser):
    """Registers the flags of `ddsp_pipeline rehearse` on `parser`."""
    parser.add_argument("--target", required=True, choices=("vertex", "kubeflow"),
                        help="The service to rehearse.")
    parser.add_argument("--image", required=True,
                        help="The pipeline's image (the train step's, CUDA), as you would give `submit`; it must be "
                             "in podman's local images (the rehearsal never pulls).")
    parser.add_argument("--cpu-image", default=None,
                        help="The other steps' image (default: the pipeline's, IMAGE's tag + '-cpu').")
    parser.add_argument("--keep", action="store_true",
                        help="Keep the task folders, executor inputs and logs (their folder is printed).")
    parser.add_argument("--work-dir", default=None, help="Where to put them (default: a temporary folder).")
    parser.add_argument("--user", default=None,
                        help="The containers' user: 'image' for the image's own; UID[:GID] for another (default: "
                             "the image's on Vertex AI, an arbitrary uid with gid 0 on Kubeflow, as OpenShift).")
    parser.add_argument("--kfp-version", default="2.5",
                        help="The Kubeflow backend to rehearse (MAJOR.MINOR, default %(default)s); before 2.3 a "
                             "non-root user cannot write the artifact folders.")
    parser.add_argument("--node", default=None, metavar="CPUS,MEMORY_GIB,GPUS",
                        help="The Kubeflow node's allocatable resources (default: GKE g2-standard-8, 7.91,28.3,1).")
    parser.add_argument("--task", action="append", default=[],
                        help="Run only this task and what it needs (repeatable), e.g. --task prepare-tfrecord.")
    parser.add_argument("--num-steps", type=int, default=2, help="Training steps (default %(default)s).")
    parser.add_argument("--task-timeout", type=int, default=1800, help="Seconds per task (default %(default)s).")


def _version(text):
    try:
        major, minor = (int(part) for part in str(text).split(".")[:2])
    except ValueError:
        raise ValueError(f"--kfp-version {text!r} is not MAJOR.MINOR, e.g. 2.5.") from None
    return major, minor


def _node(text):
    from pipelines.rehearsal.services import Node

    if not text:
        return Node()
    try:
        cpus, memory, gpus = (part.strip() for part in text.split(","))
        return Node(name="--node", cpu=float(cpus), memory=float(memory) * 2 ** 30, gpus=int(gpus))
    except ValueError:
        raise ValueError(f"--node {text!r} is not CPUS,MEMORY_GIB,GPUS, e.g. 7.91,28.3,1.") from None


def main(args):
    """Runs `ddsp_pipeline rehearse` for parsed `args`; returns the exit status."""
    from pipelines.rehearsal import driver, podman
    from pipelines.rehearsal.plan import PlanError

    try:
        settings = driver.RehearsalSettings(
            target=args.target, image=args.image, cpu_image=args.cpu_image, work_dir=args.work_dir,
            keep=args.keep, user=args.user, kfp_version=_version(args.kfp_version), node=_node(args.node),
            tasks=tuple(args.task), num_steps=args.num_steps, task_timeout=args.task_timeout)
        podman.check_podman(settings.engine)
        result = driver.Rehearsal(settings).run()
    except (ValueError, PlanError, podman.PodmanError) as error:
        print(f"ddsp_pipeline rehearse: error: {error}", file=sys.stderr)
        return 2
    except driver.RehearsalError as error:
        print(f"ddsp_pipeline rehearse: error: {error}", file=sys.stderr)
        return 2 if "not found locally" in str(error) else 1
    for line in driver.summary_lines(result):
        print(line, file=sys.stdout if result.ok else sys.stderr)
    return 0 if result.ok else 1
