r"""`ddsp_pipeline`: run the clarinet pipeline here, compile it, or submit it to the cloud.

    ddsp_pipeline run                       # the bundled clarinet material, quick preset (~10 min on 2 cores)
    ddsp_pipeline run --audio '/data/clarinet/*.wav' --preset full
    ddsp_pipeline compile                   # writes pipelines/clarinet.yaml (Vertex AI, default image)
    ddsp_pipeline compile --target kubeflow --image REGISTRY/ddsp-pipeline:0.1.0 --output kfp.yaml
    ddsp_pipeline submit --vertex --project P --region R --pipeline-root gs://B/runs --audio '/data/*.wav'
    ddsp_pipeline build-image --image us-central1-docker.pkg.dev/P/ddsp/ddsp-pipeline:0.1.0
    ddsp_pipeline submit --kfp-host https://HOST --pipeline-root gs://B/runs --audio 'gs://B/audio/*.wav'

A rerun with the same inputs reuses what is done: steps from kfp's cache, and training from its
checkpoints under <pipeline root>/checkpoints (`--no-resume` trains from step 0). Ctrl-C stops a
run within seconds (training saves a checkpoint first); a second Ctrl-C ends it at once.

Exit status: 0 done, 1 a step failed (the message names it and why), 2 bad command line or input,
130 stopped by Ctrl-C.
"""

import argparse
import logging
import os
import shlex
import sys

# Quiet TensorFlow's C++ start-up lines in every step (set it to 0 to see them).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The checkout (or installed package's) root: the Dockerfile and build context of `build-image`.
REPO_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _add_run_arguments(parser):
    """`run`'s flags: the pipeline's parameters (shared with `submit`) and where and how it runs here."""
    from pipelines import local, pipeline_flags

    pipeline_flags.add_arguments(parser)
    here = parser.add_argument_group("how it runs here")
    here.add_argument("--pipeline-root", default=local.DEFAULT_PIPELINE_ROOT,
                      help="Folder for the artifacts and kfp's cache (default: %(default)s).")
    here.add_argument("--verbose", action="store_true",
                      help="Log every training step (magenta's 'step: N ...' lines) and every prepared file, and "
                           "show the executor input of every step (default: progress bars on a terminal, a "
                           "compact progress line now and then elsewhere).")


def build_parser():
    parser = argparse.ArgumentParser(prog="ddsp_pipeline", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="{run,compile,submit,build-image,tune,rehearse}")
    commands.required = True
    run_parser = commands.add_parser("run", help="Run the whole pipeline on this machine (kfp local runner).")
    _add_run_arguments(run_parser)
    compile_parser = commands.add_parser("compile", help="Write the pipeline's YAML.")
    compile_parser.add_argument("--output", default=None, help="Where to write it (default: pipelines/clarinet.yaml).")
    from pipelines import settings_flags

    settings_flags.add_arguments(compile_parser)
    submit_parser = commands.add_parser("submit", help="Submit the pipeline to Vertex AI Pipelines or Kubeflow.")
    from pipelines import submit

    submit.add_arguments(submit_parser)
    build_parser_ = commands.add_parser(
        "build-image", help="Build the steps' images (CUDA for train, CPU for the rest, the Dataflow worker) from the "
                            "repository's Dockerfiles and push them to your registry.")
    build_parser_.add_argument("--image", required=True,
                               help="The CUDA image (train step) to push, with a registry host and tag T, e.g. "
                                    "us-central1-docker.pkg.dev/PROJECT/ddsp/ddsp-pipeline:0.1.0; the CPU image "
                                    "goes to tag T-cpu and the Dataflow worker image to T-dataflow.")
    build_parser_.add_argument("--engine", default="podman", help="podman or docker (default: %(default)s).")
    build_parser_.add_argument("--build-arg", action="append", default=[], metavar="NAME=VALUE",
                               help="A build argument, given to each Dockerfile that declares it, e.g. "
                                    "BASE_IMAGE=... or PIP_CERT=... (the Dockerfile's header lists them). Repeatable.")
    build_parser_.add_argument("--no-push", action="store_true", help="Only build.")
    build_parser_.add_argument("--dataflow-worker", action=argparse.BooleanOptionalAction, default=True,
                               help="Also build and push the prepare job's Dataflow worker image "
                                    "(docker/dataflow-worker.Dockerfile, FROM the CPU image) as T-dataflow, the name "
                                    "the pipeline gives Dataflow (default: yes; --no-dataflow-worker to skip it).")
    tune_parser = commands.add_parser(
        "tune", help="Search hyperparameters: trials here one after another, or a Vertex AI tuning job.")
    from pipelines import tune

    tune.add_arguments(tune_parser)
    rehearse_parser = commands.add_parser(
        "rehearse", help="Run the compiled pipeline's tasks in containers as Vertex AI or Kubeflow would (podman).")
    from pipelines import rehearse

    rehearse.add_arguments(rehearse_parser)
    return parser


def build_image_command(args):
    """Builds and pushes the images of --image's tag (CUDA, CPU, Dataflow worker); prints the flags
    to submit with, each image pinned by its digest where the push reported one."""
    from pipelines import images

    try:
        built = images.build_all(args.image, context=REPO_DIR, engine=args.engine, build_args=args.build_arg,
                                 push=not args.no_push, dataflow_worker=args.dataflow_worker)
    except images.ImageError as error:
        print(f"ddsp_pipeline build-image: error: {error}", file=sys.stderr)
        usage = ("names no registry", "not installed", "names a digest", "no Dockerfile built here declares")
        return 2 if any(text in str(error) for text in usage) else 1
    if args.no_push:
        print("Built " + ", ".join(built.references()) + " (not pushed).")
        return 0
    flags = shlex.join(built.submit_flags())
    print(f"Pushed {', '.join(built.references())}.\nSubmit (or compile) with:\n  ddsp_pipeline submit ... {flags}")
    if not built.dataflow_worker_image:
        print("(No Dataflow worker image was built: for the prepare step on Dataflow give one with "
              "--dataflow-worker-image.)")
    if any("@" not in reference for reference in built.references()):
        print("(Not every push reported a digest, so some are given by tag: a rebuild under the same tag may be "
              "served from kfp's cache.)")
    return 0


def _setup_logging():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s %(message)s", datefmt="%H:%M:%S")


def run_command(args, argv=()):
    from pipelines import local, pipeline_flags

    try:
        pipeline_flags.check(args)
    except ValueError as error:
        print(f"ddsp_pipeline run: error: {error}", file=sys.stderr)
        return 2
    # Only the flags given: local.run's defaults are the local run's (the bundled audio, preset quick, ...).
    given = {name: value for name, value in (("audio", args.audio), ("preset", args.preset),
                                             ("num_steps", args.num_steps), ("batch_size", args.batch_size),
                                             ("crepe_capacity", args.crepe_capacity),
                                             ("sample_rate", args.sample_rate), ("seed", args.seed))
             if value is not None}
    try:
        result = local.run(**given, eval_audio=args.eval_audio, pipeline_root=args.pipeline_root,
                           gin_files=args.gin_file, gin_params=args.gin_param, beam_options=args.beam_options,
                           use_cache=not args.no_cache, verbose=args.verbose, resume=not args.no_resume)
    except local.PipelineRunError as error:
        if error.exit_status == 130:
            again = " ".join(shlex.quote(arg) for arg in ["ddsp_pipeline", *argv] if arg != "--no-resume")
            print(f"ddsp_pipeline run: {error}\n  {again}", file=sys.stderr)
        else:
            print(f"ddsp_pipeline run: error: {error}", file=sys.stderr)
        return error.exit_status
    for line in local.summary_lines(result):
        print(line)
    return 0


def compile_command(args):
    from pipelines import settings_flags
    from pipelines.clarinet import PACKAGE_PATH, SettingsError, compile_pipeline

    try:
        settings = settings_flags.settings_from(args)
    except SettingsError as error:
        print(f"ddsp_pipeline compile: error: {error}", file=sys.stderr)
        return 2
    path = compile_pipeline(args.output or PACKAGE_PATH, settings)
    gpu = (f"{settings.accelerator_count} x {settings.accelerator}" if settings.accelerator else "no GPU")
    print(f"Wrote {path} (target {settings.target}; train on {gpu}, image {settings.image}; the other steps on "
          f"{settings.cpu_image})")
    return 0


def main(argv=None):
    """Parses the command line and runs the subcommand; returns the exit status."""
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    _setup_logging()
    if args.command == "run":
        return run_command(args, sys.argv[1:] if argv is None else argv)
    if args.command == "compile":
        return compile_command(args)
    if args.command == "build-image":
        return build_image_command(args)
    if args.command == "tune":
        from pipelines import tune

        return tune.main(args)
    if args.command == "rehearse":
        from pipelines import rehearse

        return rehearse.main(args)
    from pipelines import submit

    return submit.main(args)


def console_main():
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
