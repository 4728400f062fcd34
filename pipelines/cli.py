r"""`ddsp_pipeline`: run the clarinet pipeline here, compile it, or submit it to the cloud.

    ddsp_pipeline run                       # the bundled clarinet material, quick preset (~10 min on 2 cores)
    ddsp_pipeline run --audio '/data/clarinet/*.wav' --preset full
    ddsp_pipeline compile                   # writes pipelines/clarinet.yaml (Vertex AI, default image)
    ddsp_pipeline compile --target kubeflow --image REGISTRY/ddsp-pipeline:0.1.0 --output kfp.yaml
    ddsp_pipeline submit --vertex --project P --region R --pipeline-root gs://B/runs --audio '/data/*.wav'
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

from ddsp_core.pipeline.presets import PRESETS


def _add_run_arguments(parser):
    from pipelines import local

    parser.add_argument("--audio", default=local.BUNDLED_AUDIO,
                        help="Glob(s) of audio files to train on, comma-separated, local or gs:// (default: the "
                             "bundled clarinet training set).")
    parser.add_argument("--eval-audio", default=None,
                        help="Glob(s) of audio held out for eval and sample, e.g. another recording of the "
                             "instrument (default: the bundled validation clarinet with the bundled training set; "
                             "with your own --audio, none: the preset's split of your files). '' for none.")
    parser.add_argument("--preset", default="quick",
                        help="Preset: " + "; ".join(f"{name}: {preset.description}" for name, preset in PRESETS.items()))
    parser.add_argument("--pipeline-root", default=local.DEFAULT_PIPELINE_ROOT,
                        help="Folder for the artifacts and kfp's cache (default: %(default)s).")
    parser.add_argument("--num-steps", type=int, default=0, help="Training steps (default: the preset's).")
    parser.add_argument("--batch-size", type=int, default=0, help="Training batch (default: the preset's).")
    parser.add_argument("--crepe-capacity", default="", choices=["", "tiny", "small", "medium", "large", "full"],
                        help="CREPE size for the prepare job (default: the preset's).")
    parser.add_argument("--gin-file", action="append", default=[],
                        help="Gin file for train/eval/sample (path, or name such as models/solo_instrument.gin). "
                             "Repeatable.")
    parser.add_argument("--gin-param", action="append", default=[],
                        help="Gin binding for train/eval/sample, e.g. 'learning_rate=1e-3'. Repeatable.")
    parser.add_argument("--beam-options", default="",
                        help="Comma-separated Beam options for the prepare job (default: --runner=DirectRunner).")
    parser.add_argument("--verbose", action="store_true",
                        help="Log every training step (magenta's 'step: N ...' lines) and every prepared file, and "
                             "show the executor input of every step (default: progress bars on a terminal, a "
                             "compact progress line now and then elsewhere).")
    parser.add_argument("--no-resume", action="store_true",
                        help="Train from step 0, setting aside the checkpoints an earlier run with the same inputs "
                             "left under the pipeline root (default: resume from them).")
    parser.add_argument("--no-cache", action="store_true",
                        help="Rerun every step instead of reusing cached outputs of identical earlier steps.")


def build_parser():
    parser = argparse.ArgumentParser(prog="ddsp_pipeline", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", metavar="{run,compile,submit}")
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
    return parser


def _setup_logging():
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname).1s %(message)s", datefmt="%H:%M:%S")


def run_command(args, argv=()):
    from pipelines import local

    try:
        result = local.run(audio=args.audio, preset=args.preset, pipeline_root=args.pipeline_root,
                           num_steps=args.num_steps, batch_size=args.batch_size, crepe_capacity=args.crepe_capacity,
                           gin_files=args.gin_file, gin_params=args.gin_param, beam_options=args.beam_options,
                           use_cache=not args.no_cache, verbose=args.verbose, eval_audio=args.eval_audio,
                           resume=not args.no_resume)
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
    print(f"Wrote {path} (target {settings.target}, image {settings.image}, train on {gpu})")
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
    from pipelines import submit

    return submit.main(args)


def console_main():
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
