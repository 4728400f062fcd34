r"""Train, evaluate or sample a DDSP model: `ddsp_run --mode=train|eval|sample`.

The flags are magenta ddsp's, so its commands work with `ddsp` replaced by
`ddsp_core`:

    ddsp_run --mode=train --save_dir=/runs/clarinet \
      --gin_file=models/solo_instrument.gin --gin_file=datasets/tfrecord.gin \
      --gin_param="TFRecordProvider.file_pattern='/data/train.tfrecord*'" \
      --gin_param="batch_size=16" --gin_param="train_util.train.num_steps=100000"
    ddsp_run --mode=eval --save_dir=/runs/clarinet \
      --gin_file=datasets/tfrecord.gin --gin_file=eval/basic_f0_ld.gin \
      --gin_param="TFRecordProvider.file_pattern='/data/train.tfrecord*'" --run_once
    ddsp_run --mode=sample ... (as eval; writes WAV/PNG files and samples/index.html)

`--seed N` (train) seeds the whole run (initial weights, data order, augmentation, noise): it
binds `train.seed = N` after the gin files and params, so it wins over magenta's
`--gin_param=train.seed=M`, which works too. With neither, a resumed run keeps the seed in
save_dir/train_state.json, and a new one draws a seed, logs it and records it there.

Gin files are found as given, or on the search path: the package's gin folder
(ddsp_core/training/gin), then each --gin_search_path. In eval and sample mode (and
when resuming training) the save_dir's newest operative_config-N.gin is parsed first,
so the model needs no gin file there; later files and params override it.

Exit status: 0 done, 1 failed (the message says why), 2 bad command line.
"""

import argparse
import logging
import sys

from ddsp_core import progress
from ddsp_core.command_line import bool_flag, setup_logging
from ddsp_core.training.gin_configs import GIN_DIR, GinConfigError, parse_gin  # noqa: F401  (GIN_DIR: public)
from ddsp_core.training.gin_configs import bind_train_seed, check_seed, without_gin_context

MODES = ("train", "eval", "sample")
# A bad gin file or binding is a usage error (exit status 2).
UsageError = GinConfigError


def build_parser():
    parser = argparse.ArgumentParser(prog="ddsp_run", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=MODES, default="train", help="train, eval or sample.")
    parser.add_argument("--save_dir", default="/tmp/ddsp",
                        help="Folder (or gs://) for checkpoints, summaries, metrics and samples.")
    parser.add_argument("--restore_dir", default="",
                        help="Checkpoint folder to start from (train: when save_dir has none; eval/sample: "
                             "where to read checkpoints). Default: save_dir.")
    parser.add_argument("--gin_file", action="append", default=[],
                        help="Gin file (path, or name on the search path such as models/solo_instrument.gin). "
                             "Repeatable; later files override earlier ones.")
    parser.add_argument("--gin_param", action="append", default=[],
                        help="Gin binding, e.g. \"batch_size=16\". Repeatable; applied after the files.")
    parser.add_argument("--gin_search_path", action="append", default=[],
                        help="Extra folder to find gin files in. Repeatable.")
    parser.add_argument("--seed", type=_seed, default=None, metavar="N",
                        help="Train: seed everything in the run (weights, data order, augmentation, noise) with N, "
                             "0 to 2**31-1. Binds train.seed = N after the gin files and params, so it wins over "
                             "--gin_param=train.seed=M. Default: the gin config's train.seed; else, resuming, the "
                             "seed in save_dir/train_state.json; else one drawn at the start (logged, and recorded "
                             "there).")
    parser.add_argument("--early_stop_loss_value", type=float, default=None,
                        help="Train: stop once total_loss falls below this.")
    bool_flag(parser, "run_once", False, "Eval/sample: handle the newest checkpoint and exit (default: keep "
               "watching save_dir for new checkpoints until training has ended).")
    bool_flag(parser, "allow_memory_growth", False,
               "Take GPU memory as needed rather than all at start (share a GPU, avoid OOM at start-up).")
    bool_flag(parser, "alsologtostderr", False, "Log to stderr (always on; kept for magenta's commands).")
    parser.add_argument("--verbosity", default="info", choices=("debug", "info", "warning", "error"))
    bool_flag(parser, "verbose", False, "Train: a log line per step (magenta's 'step: N  total_loss: ...') and "
              "steps/sec every steps_per_summary steps, instead of the progress bar (or, not on a terminal, a "
              "progress line every 30 s).")
    return parser


def _seed(text):
    """argparse type of --seed: a whole number from 0 to 2**31 - 1 (gin_configs.check_seed)."""
    try:
        return check_seed(int(text), flag="N")
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error) if "N must be" in str(error) else
                                         f"invalid whole number: {text!r}") from None


def run(args):
    """Runs one mode after gin is parsed; returns the library function's result."""
    from ddsp_core.evaluation import eval_util
    from ddsp_core.training import train_util

    if args.mode == "train":
        kwargs = {"save_dir": args.save_dir, "restore_dir": args.restore_dir or None}
        if args.early_stop_loss_value is not None:
            kwargs["early_stop_loss_value"] = args.early_stop_loss_value
        return train_util.train(**kwargs)
    function = eval_util.evaluate if args.mode == "eval" else eval_util.sample
    kwargs = {"save_dir": args.save_dir, "restore_dir": args.restore_dir or None}
    if args.run_once:
        kwargs["run_once"] = True
    return function(**kwargs)


def main(argv=None):
    """Parses flags, sets up logging, GPU memory and gin, and runs the mode. Returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    setup_logging(args.verbosity)
    progress.set_verbose(args.verbose)
    from ddsp_core import accelerators
    from ddsp_core.models import checkpoints
    from ddsp_core.evaluation import eval_util
    from ddsp_core.training import train_lock, train_util

    if args.allow_memory_growth:
        accelerators.allow_memory_growth()
    try:
        resume_dir = args.restore_dir or args.save_dir
        parse_gin(args.gin_file, args.gin_param, args.gin_search_path,
                  operative_config_dir=resume_dir if (args.mode != "train" or _has_checkpoint(resume_dir)) else None)
        if args.mode == "train":
            bind_train_seed(args.seed)
        elif args.seed is not None:
            logging.warning("--seed is for --mode=train; %s mode ignores it.", args.mode)
        run(args)
    except UsageError as error:
        logging.error("%s", error)
        print(f"ddsp_run: error: {error}", file=sys.stderr)
        return 2
    except (train_util.TrainingError, eval_util.EvaluationError, checkpoints.CheckpointError, train_lock.LockHeld,
            FileNotFoundError, ValueError) as error:
        logging.debug("Details:", exc_info=True)
        print(f"ddsp_run: error ({args.mode}): {without_gin_context(error)}", file=sys.stderr)
        return 1
    except train_util.TrainingInterrupted as stopped:
        print(f"ddsp_run: {stopped}", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("ddsp_run: interrupted; the checkpoints already written are kept (rerun to resume from the newest).",
              file=sys.stderr)
        return 130
    return 0


def _has_checkpoint(directory):
    from ddsp_core.models import checkpoints

    try:
        return checkpoints.latest(directory) is not None
    except Exception:
        return False


def console_main():
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
