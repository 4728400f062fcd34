"""The flags of the pipeline's parameters, defined once for `ddsp_pipeline run` and
`ddsp_pipeline submit`.

A flag not given is None (a repeatable one: []), in both commands; each command then
resolves its own defaults: `run` passes only the given flags to `local.run`, whose keyword
defaults are the local run's (the bundled clarinet material, preset quick, the local Beam
runner), and `submit` passes only the given flags to the pipeline, whose defaults are the
compiled pipeline's (the material bundled in the image).
"""

import argparse
import sys

from ddsp_core.steps.presets import PRESETS, get_preset
from ddsp_core.steps.steps import split_commas
from ddsp_core.training.gin_configs import check_seed

CREPE_CAPACITIES = ["tiny", "small", "medium", "large", "full"]


class _DeprecatedBeamOptions(argparse.Action):
    """`--beam-options A,B`: the old comma-separated form, added as `--beam-option A --beam-option B`."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(f"{parser.prog}: warning: --beam-options is deprecated (a value containing a comma is split): give "
              "each Beam option with --beam-option=OPTION.", file=sys.stderr)
        setattr(namespace, self.dest, [*(getattr(namespace, self.dest, None) or []), *split_commas(values)])


def add_arguments(parser):
    """Registers the pipeline-parameter flags on `parser`; returns their argument group (a
    command may add its own flags of the same kind to it)."""
    group = parser.add_argument_group("what to run (the pipeline's parameters; a flag left out keeps its default)")
    group.add_argument("--audio", default=None,
                       help="Glob(s) of audio files to train on, comma-separated, local or gs://; `submit` uploads "
                            "local files under the pipeline root first (default: the bundled clarinet training "
                            "set).")
    group.add_argument("--eval-audio", default=None,
                       help="Glob(s) of audio held out for eval and sample, e.g. another recording of the "
                            "instrument, given like --audio (default: the bundled validation clarinet with the "
                            "bundled training set; with your own --audio, none: the preset's split of your "
                            "files). '' for none.")
    presets = "; ".join(f"{name}: {preset.description.rstrip('.')}" for name, preset in PRESETS.items())
    group.add_argument("--preset", default=None, help=f"Preset (default: quick): {presets}.")
    group.add_argument("--num-steps", type=int, default=None, help="Training steps (default: the preset's).")
    group.add_argument("--batch-size", type=int, default=None, help="Training batch (default: the preset's).")
    group.add_argument("--crepe-capacity", default=None, choices=CREPE_CAPACITIES,
                       help="CREPE size for the prepare job (default: the preset's).")
    group.add_argument("--sample-rate", type=int, default=None,
                       help="Audio rate of the examples and of the model, Hz: any rate, e.g. 16000, 22050, 44100, "
                            "48000 (CREPE still runs at 16 kHz; the frame rate follows: 100 frames/s at 44.1 kHz, "
                            "50 at 22.05 kHz). Default: the preset's (16000; hq 48000; vst only 16000).")
    group.add_argument("--seed", type=int, default=None, metavar="N",
                       help="Seed the whole training (weights, data order, augmentation, noise) with N, 0 to "
                            "2**31-1; it wins over a train.seed in --gin-param. A different seed is a different "
                            "model: its own cache entries and resume folder. Default: training draws a seed, "
                            "recorded in the model's train_state.json (the summary of `run` prints it).")
    group.add_argument("--gin-file", action="append", default=[],
                       help="Gin file for train/eval/sample, applied after the preset's: a shipped name such as "
                            "models/solo_instrument.gin (`run` also takes a path on this machine, `submit` only "
                            "shipped files). Repeatable.")
    group.add_argument("--gin-param", action="append", default=[],
                       help="Gin binding for train/eval/sample, e.g. 'learning_rate=1e-3'. Repeatable.")
    group.add_argument("--beam-option", action="append", default=[], dest="beam_options", metavar="OPTION",
                       help="One Beam option for the prepare job, written with '=' as it starts with '--', e.g. "
                            "--beam-option=--runner=DataflowRunner --beam-option=--project=P (a value may contain "
                            "commas). Repeatable (default: the local runner).")
    group.add_argument("--beam-options", action=_DeprecatedBeamOptions, default=argparse.SUPPRESS,
                       dest="beam_options", metavar="OPTIONS",
                       help="Deprecated: comma-separated Beam options, split at every comma and added as "
                            "--beam-option each; use --beam-option.")
    group.add_argument("--no-cache", action="store_true",
                       help="Rerun every step instead of reusing cached outputs of identical earlier steps.")
    group.add_argument("--no-resume", action="store_true",
                       help="Train from step 0, setting aside the checkpoints an earlier run with the same inputs "
                            "left under <pipeline root>/checkpoints (default: the train step resumes from them).")
    return group


def check(args):
    """Raises ValueError, saying what to give, for a flag value that no command can use."""
    if args.preset is not None:
        try:
            get_preset(args.preset)
        except ValueError as error:
            raise ValueError(f"--preset: {error}") from None
    for flag, value in (("--num-steps", args.num_steps), ("--batch-size", args.batch_size),
                        ("--sample-rate", args.sample_rate)):
        if value is not None and value < 1:
            raise ValueError(f"{flag} must be at least 1 (leave it out for the preset's), not {value}.")
    if args.seed is not None:
        check_seed(args.seed)
    if args.sample_rate is not None:
        try:
            get_preset(args.preset or "quick", args.sample_rate)
        except ValueError as error:
            raise ValueError(f"--sample-rate: {error}") from None


def eval_audio_parameter(audio, eval_audio):
    """The `eval_audio_pattern` to pass for the --audio and --eval-audio flags of a cloud run:
    --eval-audio when given ('' included); '' (the preset's split of the training files) with
    one's own --audio and no --eval-audio, since the bundled validation clarinet is no held-out
    set for another instrument; None to keep the compiled default (the bundled validation set)."""
    if eval_audio is not None:
        return eval_audio
    return "" if audio else None
