r"""Create a TFRecord dataset from audio files (the same flags as magenta's ddsp).

    ddsp_prepare_tfrecord \
      --input_audio_filepatterns='/data/clarinet/*.wav' \
      --output_tfrecord_path=/data/clarinet/tfrecords/train.tfrecord \
      --num_shards=16 --alsologtostderr --allow_memory_growth

or `python -m ddsp_core.prepare.ddsp_prepare_tfrecord ...`.

Writes `<output_tfrecord_path>-SSSSS-of-NNNNN` shards (and eval shards with
--eval_split_fraction) and `<stem>_manifest.json` next to them.

Exit status: 0 all files used; 3 some files were skipped (each is listed, with the
reason, in the log and the manifest; --allow_skipped_files makes this 0); 1 the job
could not run or wrote no example; 2 bad flags.
"""

import argparse
import logging
import sys

from ddsp_core.example_format import ExampleFormat

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_SKIPPED = 0, 1, 2, 3


def _bool(text):
    if text.lower() in ("1", "true", "yes", "t", "y"):
        return True
    if text.lower() in ("0", "false", "no", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _add_bool(parser, name, default, help_text):
    """--name, --name=false and absl's --noname."""
    parser.add_argument(f"--{name}", nargs="?", const=True, default=default, type=_bool,
                        help=f"{help_text} (default {default}; --no{name} to turn off)")
    parser.add_argument(f"--no{name}", dest=name, action="store_false", help=argparse.SUPPRESS)


def _list(text):
    return [item.strip() for item in text.split(",") if item.strip()]


def make_parser():
    parser = argparse.ArgumentParser(prog="ddsp_prepare_tfrecord", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--input_audio_filepatterns", type=_list, action="append", required=True,
                        help="Comma-separated globs of audio files, local or gs:// (repeatable).")
    parser.add_argument("--eval_audio_filepatterns", type=_list, action="append", default=[],
                        help="Comma-separated globs of audio files that all go to the eval split, e.g. a held-out "
                             "instrument (repeatable; never mixed with the training files).")
    parser.add_argument("--output_tfrecord_path", required=True, help="Path prefix of the train shards.")
    parser.add_argument("--eval_tfrecord_path", default="",
                        help="Path prefix of the eval shards (default: 'train' -> 'eval' in the train path).")
    parser.add_argument("--num_shards", type=int, default=0,
                        help="Shards per split, at most one per file of the split; 0: the runner decides.")
    default = ExampleFormat()  # magenta's: 16 kHz, 250 frames/s, 4 s examples every 1 s.
    parser.add_argument("--sample_rate", type=int, default=default.sample_rate,
                        help="Sample rate of the audio feature and of the model trained on it, Hz (any rate; "
                             "CREPE still runs at 16 kHz). The frame rate must divide it.")
    parser.add_argument("--frame_rate", type=int, default=default.frame_rate,
                        help="Feature frames per second; must divide 16000 and the sample rate (e.g. 250 at 16 and "
                             "48 kHz, 100 at 44.1 kHz, 50 at 22.05 kHz).")
    parser.add_argument("--example_secs", "--window_secs", dest="example_secs", type=float,
                        default=default.example_secs, help="Length of each example, seconds.")
    parser.add_argument("--hop_secs", type=float, default=default.hop_secs,
                        help="Hop between examples of a file, seconds.")
    parser.add_argument("--eval_split_fraction", type=float, default=0.0,
                        help="Fraction of the files held out for eval.")
    parser.add_argument("--chunk_secs", type=float, default=None,
                        help="Accepted for compatibility and ignored: files are not padded or chunked.")
    _add_bool(parser, "center", False, "Add the frame at each example's end time (example_secs * frame_rate + 1 "
              "frames; read with TFRecordProvider.centered = True)")
    _add_bool(parser, "viterbi", True, "Viterbi decoding of CREPE's f0")
    parser.add_argument("--crepe_capacity", default="full", choices=["tiny", "small", "medium", "large", "full"],
                        help="CREPE model size ('tiny' is ~20x faster, less accurate).")
    parser.add_argument("--crepe_batch_size", type=int, default=512, help="CREPE frames per forward pass.")
    parser.add_argument("--crepe_precision", default="float32", choices=["float32", "bfloat16", "auto"],
                        help="CREPE compute precision: bfloat16 is ~3x faster on CPUs with AMX/AVX512-BF16 "
                             "and on GPUs (same f0 within 0.1 cent on the bundled notes), slower elsewhere; "
                             "auto picks bfloat16 where it is fast.")
    parser.add_argument("--block_secs", type=int, default=60,
                        help="Prepare files longer than this many seconds in blocks, spread over the workers (memory "
                             "stays flat in a file's length); 0 reads every file whole.")
    parser.add_argument("--min_audio_secs", type=float, default=0.5, help="Skip files shorter than this.")
    parser.add_argument("--silence_db", type=float, default=-60.0,
                        help="Skip files and windows whose peak is below this, dBFS.")
    parser.add_argument("--pipeline_options", type=_list, default=["--runner=DirectRunner"],
                        help="Comma-separated Beam pipeline options, e.g. '--runner=DataflowRunner,--project=p,"
                             "--region=r,--temp_location=gs://b/tmp'. DirectRunner runs in-process.")
    parser.add_argument("--num_workers", type=int, default=0,
                        help="Local runner: worker processes (0: as many as this process's CPU quota, CPU "
                             "affinity and memory limit allow).")
    _add_bool(parser, "overwrite", False, "Delete the shards and manifest of an earlier run at the output path")
    _add_bool(parser, "allow_skipped_files", False, "Exit 0 even when some files were skipped")
    _add_bool(parser, "allow_memory_growth", False, "Let GPU memory grow as needed instead of taking it all")
    _add_bool(parser, "verbose", False, "Log a line per file prepared, besides the progress bar (or, not on a "
              "terminal, a progress line every 30 s)")
    for name in ("alsologtostderr", "logtostderr"):
        _add_bool(parser, name, False, "Accepted for compatibility; the log always goes to stderr")
    return parser


def main(argv=None):
    """Runs the prepare job; returns the exit status."""
    try:
        args = make_parser().parse_args(argv)
    except SystemExit as exit_:
        return exit_.code if exit_.code else EXIT_OK
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(asctime)s %(message)s", force=True)
    from ddsp_core import progress
    from ddsp_core.prepare import prepare_tfrecord_lib as lib

    lib.tidy_beam_logging()
    progress.set_verbose(args.verbose)

    try:
        settings = lib.PrepareSettings(
            input_audio_filepatterns=[p for group in args.input_audio_filepatterns for p in group],
            output_tfrecord_path=args.output_tfrecord_path, eval_tfrecord_path=args.eval_tfrecord_path,
            num_shards=args.num_shards,
            example_format=ExampleFormat(sample_rate=args.sample_rate, frame_rate=args.frame_rate,
                                         example_secs=args.example_secs, hop_secs=args.hop_secs, centered=args.center),
            eval_split_fraction=args.eval_split_fraction,
            eval_audio_filepatterns=[p for group in args.eval_audio_filepatterns for p in group],
            viterbi=args.viterbi, crepe_capacity=args.crepe_capacity, crepe_batch_size=args.crepe_batch_size,
            crepe_precision=args.crepe_precision,
            min_audio_secs=args.min_audio_secs, silence_db=args.silence_db,
            allow_memory_growth=args.allow_memory_growth, block_secs=args.block_secs)
    except ValueError as error:
        print(f"ddsp_prepare_tfrecord: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    if args.allow_memory_growth:
        from ddsp_core import accelerators

        accelerators.allow_memory_growth()
    if args.chunk_secs is not None:
        logging.info("--chunk_secs is ignored: files are cut into examples without padding.")
    try:
        manifest = lib.run(settings, args.pipeline_options, num_workers=args.num_workers, overwrite=args.overwrite)
    except (FileNotFoundError, FileExistsError) as error:
        print(f"ddsp_prepare_tfrecord: error: {error}", file=sys.stderr)
        return EXIT_FAILED
    except ValueError as error:  # Flags that contradict each other (e.g. overlapping train and eval files).
        print(f"ddsp_prepare_tfrecord: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    for line in lib.summary_lines(manifest):
        logging.info(line)
    logging.info("Manifest: %s", settings.manifest_path)
    if manifest["examples_written"]["total"] == 0:
        logging.error("No example was written: every file was skipped (see above).")
        return EXIT_FAILED
    if manifest["files_skipped"] and not args.allow_skipped_files:
        logging.warning("%d files were skipped: exit status %d (--allow_skipped_files to accept skips).",
                        manifest["files_skipped"], EXIT_SKIPPED)
        return EXIT_SKIPPED
    return EXIT_OK


def console_main():
    sys.exit(main())


if __name__ == "__main__":
    console_main()
