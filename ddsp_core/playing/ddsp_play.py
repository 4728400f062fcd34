r"""Play a trained instrument: from MIDI, or from any recording (timbre transfer).

    ddsp_play --model out/pipeline/.../model --output melody.wav            # the built-in melody
    ddsp_play --midi song.mid --list                                        # the song's parts
    ddsp_play --model RUN_DIR --midi song.mid --track Melody --transpose auto --output song.wav
    ddsp_play --model RUN_DIR --midi song.mid --vibrato_cents 20 --output song.wav
    ddsp_play --model RUN_DIR --audio voice.mp3 --output voice_as_clarinet.wav
    ddsp_play --model EXPORT_DIR --audio flute.wav --noauto_adjust --pitch_shift -12

--model is a training run folder (checkpoints, operative config, model_statistics.json) or
a ddsp_export folder. A MIDI file plays one part: the one --track/--channel pick, else its
only pitched part, else the likeliest melody (said and shown); channel 10 (drums) never plays.
The WAV is written at the model's sample rate, with a PNG beside it (input and output
spectrograms, f0 and level curves) unless --no_plot. Outputs are written whole or not at all.

Exit status: 0 done; 2 bad input (not audio, silence, no voiced frame, MIDI without notes, a
drum or missing part picked, no checkpoint, pitches outside the instrument's range, bad flags);
1 anything else.
"""

import argparse
import logging
import os
import sys

from ddsp_core.command_line import bool_flag, setup_logging
from ddsp_core.playing import midi as midi_lib
from ddsp_core.playing import midi_tracks, transfer


def build_parser():
    parser = argparse.ArgumentParser(prog="ddsp_play", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="", help="Training run folder or ddsp_export folder (needed except "
                        "with --list).")
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
    parser.add_argument("--list", action="store_true", help="MIDI: print the file's parts (track, channel, "
                        "program, notes, pitch range, polyphony) and exit; needs no --model.")
    parser.add_argument("--track", default=None, metavar="NAME|N",
                        help="MIDI: play this track (its number or name as --list shows; 'all': every pitched part).")
    parser.add_argument("--channel", type=_channel, default=None, metavar="N",
                        help="MIDI: play this channel (1-16 as --list shows; 10 is percussion and never plays).")
    parser.add_argument("--transpose", type=_transpose, default=None, metavar="auto|N",
                        help="MIDI: 'auto' moves the line by whole octaves into the instrument's range; N: semitones "
                        "(default: 0 for a file, auto for the built-in melody).")
    parser.add_argument("--polyphony", default="voices", choices=("voices", "top"),
                        help="MIDI: notes sounding together play as one voice each, mixed (voices, default), or "
                        "only the highest (top: one melodic line).")
    expression = midi_lib.Expression()
    parser.add_argument("--attack", type=float, default=expression.attack_s, help="MIDI: attack time (s).")
    parser.add_argument("--release", type=float, default=expression.release_s, help="MIDI: release time (s).")
    parser.add_argument("--glide", type=float, default=expression.glide_s, help="MIDI: legato glide time (s).")
    parser.add_argument("--vibrato_cents", type=float, default=expression.vibrato_cents,
                        help="MIDI: vibrato depth (cents, peak).")
    parser.add_argument("--vibrato_hz", type=float, default=expression.vibrato_hz, help="MIDI: vibrato rate (Hz).")
    parser.add_argument("--bend_range", type=_positive, default=2.0, help="MIDI: pitch-bend range (semitones).")
    parser.add_argument("--allow_out_of_range", action="store_true",
                        help="Play pitches outside the instrument's training range anyway.")
    parser.add_argument("--chunk_seconds", type=float, default=2.0,
                        help="Seconds rendered per block (memory does not grow with the input's length).")
    parser.add_argument("--seed", type=int, default=0, help="Noise seed.")
    parser.add_argument("--verbosity", default="info", choices=("debug", "info", "warning", "error"))
    return parser


def _positive(text):
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a number of semitones > 0, got {text!r}")
    return value


def _channel(text):
    try:
        channel = int(text)
    except ValueError:
        channel = 0
    if not 1 <= channel <= 16:
        raise argparse.ArgumentTypeError(f"a MIDI channel is 1-16 (as --list shows), got {text!r}")
    return channel


def _transpose(text):
    if text.strip().lower() == "auto":
        return "auto"
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'auto' or whole semitones (e.g. -12), got {text!r}") from None


def list_parts(path, bend_range=2.0):
    """Prints the parts of a MIDI file (--list); returns the table."""
    parts, _ = midi_lib.read_parts(path, bend_range_semitones=bend_range)
    table = midi_tracks.parts_table(parts, path)
    print(table)
    print("Pick one with --track N|NAME and/or --channel N; channel 10 (percussion) is never played.")
    return table


def pick_midi(args):
    """Reads --midi and picks what plays (--track, --channel, --polyphony), printing the choice.

    Returns:
        (notes, bends, what): the notes to play, their pitch bends, and the pick in words.
    """
    parts, bends = midi_lib.read_parts(args.midi, bend_range_semitones=args.bend_range)
    selection = midi_tracks.select(parts, bends, track=args.track, channel=args.channel, path=args.midi)
    if args.track is None and args.channel is None and len([p for p in parts if not p.percussion]) > 1:
        print(midi_tracks.parts_table(parts, args.midi))
    print(f"Playing {selection.description} of {args.midi} ({selection.reason}).")
    notes = list(selection.notes)
    if selection.polyphony > 1:
        if args.polyphony == "top":
            notes = midi_tracks.top_line(notes)
            print(f"It has up to {selection.polyphony} notes at once; --polyphony top plays the highest note only "
                  f"({len(notes)} notes of one line).")
        else:
            print(f"It has up to {selection.polyphony} notes at once: each plays as its own voice of the instrument, "
                  "mixed (--polyphony top plays the highest note only).")
    return notes, selection.bends, f"{selection.description[0].upper()}{selection.description[1:]} of {args.midi}"


def transposition(args, instrument, notes, what):
    """Semitones to move the notes by (--pitch_shift plus --transpose), checked against the
    instrument's range unless --allow_out_of_range; prints what --transpose auto chose."""
    from ddsp_core.playing import play as play_lib

    transpose = args.transpose if args.transpose is not None else ("auto" if not args.midi else 0)
    pitches = [note.pitch + args.pitch_shift for note in notes]
    moved = play_lib.octaves_into_range(instrument, pitches) if transpose == "auto" else transpose
    shift = args.pitch_shift + moved
    low, high = instrument.pitch_range_midi()
    if transpose == "auto" and args.midi:
        print(f"--transpose auto: {moved:+.0f} semitones (the line's MIDI {min(pitches):.0f}-{max(pitches):.0f} "
              f"-> {min(pitches) + moved:.0f}-{max(pitches) + moved:.0f}; the instrument's MIDI {low:.0f}-{high:.0f}).")
    if not args.allow_out_of_range:
        try:
            play_lib.check_pitch_range(instrument, [int(round(note.pitch + shift)) for note in notes], what)
        except play_lib.PlayError as error:
            if transpose == "auto":
                hint = (f" --transpose auto moved it by {moved:+.0f} semitones, the best whole-octave fit, but the "
                        f"line spans {max(pitches) - min(pitches):.0f} semitones and the instrument {high - low:.0f}: "
                        "pick another part (--list) or pass --allow_out_of_range.")
            else:
                hint = " Or pass --transpose auto to move it by whole octaves into the range."
            raise play_lib.PlayError(f"{error}{hint}") from None
    return shift


def play(args):
    """Runs one ddsp_play command line (parsed); returns the paths written."""
    from ddsp_core.playing import play as play_lib
    from ddsp_core.playing.instrument import load_instrument

    if args.midi:  # Before loading the model: a bad pick fails fast.
        notes, bends, what = pick_midi(args)
    elif not args.audio:
        notes, bends, what = midi_lib.builtin_melody(), (), "The built-in melody"
    instrument = load_instrument(args.model)
    if args.audio:
        adjustment = transfer.Adjustment(auto_adjust=args.auto_adjust, pitch_shift=args.pitch_shift,
                                         loudness_shift=args.loudness_shift,
                                         min_f0_confidence=args.min_f0_confidence)
        performance = play_lib.play_recording(instrument, args.audio, adjustment, crepe_capacity=args.crepe_capacity,
                                              seed=args.seed, chunk_seconds=args.chunk_seconds,
                                              allow_out_of_range=args.allow_out_of_range)
    else:
        shift = transposition(args, instrument, notes, what)
        expression = midi_lib.Expression(attack_s=args.attack, release_s=args.release, glide_s=args.glide,
                                         vibrato_cents=args.vibrato_cents, vibrato_hz=args.vibrato_hz)
        performance = play_lib.play_midi(instrument, notes, bends, expression, pitch_shift=shift,
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
    if (args.list or args.track is not None or args.channel is not None) and not args.midi:
        return _usage_error(parser, "--list, --track and --channel read a MIDI file: add --midi FILE.")
    if args.transpose is not None and args.audio:
        return _usage_error(parser, "--transpose is for MIDI; move a recording with --pitch_shift (and --auto_adjust).")
    if not args.list and not args.model:
        return _usage_error(parser, "--model is required: a training run folder or a ddsp_export folder "
                            "(only --midi FILE --list runs without one).")
    setup_logging(args.verbosity)
    if args.list:
        try:
            list_parts(args.midi, args.bend_range)
        except midi_lib.MidiError as error:
            print(f"ddsp_play: {error}", file=sys.stderr)
            return 2
        return 0
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


def _usage_error(parser, message):
    try:
        parser.error(message)
    except SystemExit as error:
        return int(error.code or 2)


def console_main():
    sys.exit(main(sys.argv[1:]))


if __name__ == "__main__":
    console_main()
