r"""Play a trained instrument: from MIDI, or from any recording (timbre transfer).

    ddsp_play --model out/pipeline/.../model --output melody.wav            # the built-in melody
    ddsp_play --model RUN_DIR --midi song.mid --vibrato_cents 20 --output song.wav
    ddsp_play --model RUN_DIR --audio voice.mp3 --output voice_as_clarinet.wav
    ddsp_play --model EXPORT_DIR --audio flute.wav --noauto_adjust --pitch_shift -12

--model is a training run folder (checkpoints, operative config, model_statistics.json) or
a ddsp_export folder. The WAV is written at the model's sample rate, with a PNG beside it
(input and output spectrograms, f0 and level curves) unless --no_plot. Outputs are written
whole or not at all.

Exit status: 0 done; 2 bad input (not audio, silence, no voiced frame, MIDI without notes,
no checkpoint, pitches outside the instrument's range, bad flags); 1 anything else.
"""

import argparse
import logging
import os
import sys

from ddsp_core.command_line import bool_flag, setup_logging
from ddsp_core.playing import midi as midi_lib
from ddsp_core.playing import transfer


def build_parser():
    parser = argparse.ArgumentParser(prog="ddsp_play", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="Training run folder or ddsp_export folder.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--midi", default="", help="MIDI file to play (default: a built-in melody).")
    source.add_argument("--audio", default="", help="Recording to transfer (any format, rate, channels).")
    parser.add_argument("--output", default="ddsp_play.wav", help="Output WAV path (a PNG is written beside it).")
    parser.add_argument("--no_plot", action="store_true", help="Do not write the PNG.")
    parser.add_argument("--pitch_shift", type=float, default=0.0, help="Semitones to transpose by.")
    parser.add_argument("--loudness_shift", type=float, default=0.0, help="Audio: dB added to the level.")
    bool_flag(parser, "auto_adjust", True, "Audio: map the recording's note levels onto the model's and move "
               "its pitch by octaves into the model's range (default; --noauto_adjust to turn off).")
    parser.add_argument("--crepe_capacity", default="full", choices=("tiny", "small", "medium", "large", "full"),
                        help="Audio: CREPE model size for f0 (default full).")
    parser.add_argument("--min_f0_confidence", type=float, default=transfer.DEFAULT_MIN_F0_CONFIDENCE,
                        help="Audio: frames below this f0 confidence are unvoiced and kept quiet.")
    expression = midi_lib.Expression()
    parser.add_argument("--attack", type=float, default=expression.attack_s, help="MIDI: attack time (s).")
    parser.add_argument("--release", type=float, default=expression.release_s, help="MIDI: release time (s).")
    parser.add_argument("--glide", type=float, default=expression.glide_s, help="MIDI: legato glide time (s).")
    parser.add_argument("--vibrato_cents", type=float, default=expression.vibrato_cents,
                        help="MIDI: vibrato depth (cents, peak).")
    parser.add_argument("--vibrato_hz", type=float, default=expression.vibrato_hz, help="MIDI: vibrato rate (Hz).")
    parser.add_argument("--bend_range", type=float, default=2.0, help="MIDI: pitch-bend range (semitones).")
    parser.add_argument("--allow_out_of_range", action="store_true",
                        help="Play pitches outside the instrument's training range anyway.")
    parser.add_argument("--chunk_seconds", type=float, default=2.0,
                        help="Seconds rendered per block (memory does not grow with the input's length).")
    parser.add_argument("--seed", type=int, default=0, help="Noise seed.")
    parser.add_argument("--verbosity", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def play(args):
    """Runs one ddsp_play command line (parsed); returns the paths written."""
    from ddsp_core.playing import play as play_lib
    from ddsp_core.playing.instrument import load_instrument

    instrument = load_instrument(args.model)
    if args.audio:
        adjustment = transfer.Adjustment(auto_adjust=args.auto_adjust, pitch_shift=args.pitch_shift,
                                         loudness_shift=args.loudness_shift,
                                         min_f0_confidence=args.min_f0_confidence)
        performance = play_lib.play_recording(instrument, args.audio, adjustment, crepe_capacity=args.crepe_capacity,
                                              seed=args.seed, chunk_seconds=args.chunk_seconds,
                                              allow_out_of_range=args.allow_out_of_range)
    else:
        if args.midi:
            notes, bends = midi_lib.read_midi(args.midi, bend_range_semitones=args.bend_range)
            what = args.midi
        else:
            notes, bends, what = midi_lib.builtin_melody(), (), "The built-in melody"
            # The built-in melody moves by octaves into the instrument's range.
            args.pitch_shift += play_lib.octaves_into_range(instrument, [note.pitch for note in notes])
        expression = midi_lib.Expression(attack_s=args.attack, release_s=args.release, glide_s=args.glide,
                                         vibrato_cents=args.vibrato_cents, vibrato_hz=args.vibrato_hz)
        performance = play_lib.play_midi(instrument, notes, bends, expression, pitch_shift=args.pitch_shift,
                                         seed=args.seed, chunk_seconds=args.chunk_seconds,
                                         allow_out_of_range=args.allow_out_of_range, what=what)
    paths = play_lib.write_outputs(performance, args.output, plot=not args.no_plot)
    facts = ", ".join(f"{key} {value}" for key, value in performance.facts.items())
    logging.info("Played %s with %s (%s).", args.audio or args.midi or "the built-in melody", instrument.checkpoint,
                 facts)
    for path in paths:
        print(f"Wrote {path}")
    return paths


def main(argv=None):
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as error:
        return int(error.code or 0)
    setup_logging(args.verbosity)
    from ddsp_core.playing.instrument import InstrumentError
    from ddsp_core.playing.play import PlayError
    from ddsp_core.models.model_statistics import StatisticsError

    if args.output and os.path.isdir(args.output):
        print(f"ddsp_play: --output {args.output} is a folder; give a .wav file path.", file=sys.stderr)
        return 2
    try:
        play(args)
    except (InstrumentError, StatisticsError, PlayError, transfer.TransferError, midi_lib.MidiError) as error:
        print(f"ddsp_play: {error}", file=sys.stderr)
        return 2
    except Exception as error:  # Anything unexpected: one line, the details with --verbosity debug.
        logging.debug("Details:", exc_info=True)
        print(f"ddsp_play: failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    return 0


def console_main():
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
