"""Playing benchmarks (issue 13): offline rendering rate, streaming cost per hop, MIDI accuracy.

1. Offline rendering (what `ddsp_play --midi` runs after loading): the built-in melody's
   curves rendered by `play.render_features`, batch 1, 2 s blocks; x real time = audio
   seconds / wall seconds (median of --repeats runs, after one untimed run that traces), with
   and without 30 cents of vibrato. Timed in turns with it in the same process: the rendering
   before issue 26 (`render_before`, the baseline) and that of 2026-12-06's first change
   (`render_decoder_only`: the offline decoder, but every harmonic computed and blocks of
   exactly 2 s).
   For the vst preset's model (models/vst.gin, 50 frames/s) and the solo model
   (models/solo_instrument_dry.gin, 250 frames/s); weights random (speed does not depend on them).
2. Streaming: one 20 ms hop per call (1 frame of the vst model, 5 frames of the solo model)
   through `StreamingSynth.process`, as a plugin calls it; the median and 99th percentile of
   the compute per call.
3. MIDI accuracy, with a trained model (--model, a run or export folder): a detached scale
   over the model's range rendered from MIDI; per note, CREPE (full) f0 of the output in
   cents from the note (median over the note's middle); the level between notes (rest
   frames after the release) relative to the notes, in dB; and each onset's time (first
   frame within 6 dB of the note's level) minus the MIDI time.

One core (taskset when available, and single-threaded TensorFlow/XLA), TensorFlow backend
unless KERAS_BACKEND says otherwise.

    python -m benchmarks.bench_play --model out/pipeline/<run>/train/model
    python -m benchmarks.bench_play --skip_accuracy --repeats 3
    python -m benchmarks.bench_play --smoke      # the vst model, 1 repeat, 10 streaming calls: seconds
"""

import argparse
import datetime
import os
import platform
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_NUM_INTRAOP_THREADS", "1")
os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
os.environ.setdefault("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1")

import numpy as np  # noqa: E402

MODELS = {"vst": ("models/vst.gin", 50, []), "solo": ("models/solo_instrument_dry.gin", 250, [])}


def _one_core():
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})


def build_random_instrument(kind, folder):
    """A run folder with a model of `kind`'s size (random weights) and synthetic statistics."""
    import gin

    from ddsp_core.training import checkpoints, model_statistics
    from ddsp_core.training.gin_configs import parse_gin
    from ddsp_core.training.models import get_model

    gin_file, frame_rate, params = MODELS[kind]
    parse_gin([gin_file], ["RnnFcDecoder.precision = 'float32'", "n_samples = 16000", *params])
    model = get_model()
    features = {"f0_hz": np.full((1, frame_rate), 440.0, "float32"), "audio": np.zeros((1, 16000), "float32"),
                "loudness_db": np.full((1, frame_rate), -30.0, "float32"),
                "power_db": np.full((1, frame_rate), -30.0, "float32")}
    model(features)
    checkpoints.save(model, folder, 1)
    with open(os.path.join(folder, "operative_config-0.gin"), "w") as file:
        file.write(gin.operative_config_str())
    rng = np.random.default_rng(0)
    examples = [{"f0_hz": np.full(frame_rate, 440.0 * 2 ** (m / 12), "float32"),
                 "f0_confidence": np.full(frame_rate, 0.9, "float32"),
                 "loudness_db": np.linspace(-40, -5, frame_rate).astype("float32"),
                 "power_db": np.linspace(-45, -10, frame_rate).astype("float32")} for m in rng.uniform(-19, 26, 8)]
    model_statistics.write(folder, model_statistics.compute(examples, 16000, frame_rate))
    gin.clear_config()
    return folder


def render_before(synth, f0, level_db, level_key, chunk_frames):
    """Offline rendering as of 2026-11-30 (the baseline rows of RESULTS.md): `process` on blocks
    of `chunk_frames` (the last one shorter, so traced again), then `flush`, through a
    StreamingSynth with plain tf.function steps; voices mixed as `play.render_features` does."""
    synth.reset()
    pieces = [synth.process({"f0_hz": f0[:, start:start + chunk_frames],
                             level_key: level_db[:, start:start + chunk_frames]})
              for start in range(0, f0.shape[1], chunk_frames)]
    pieces.append(synth.flush())
    mix = np.concatenate(pieces, axis=1)[:, :f0.shape[1] * synth.hop_size].sum(axis=0)
    peak = float(np.max(np.abs(mix)))
    return mix * min(1.0, 0.98 / peak) if peak else mix


def render_decoder_only(synth, f0, level_db, level_key, chunk_frames):
    """Offline rendering as of commit 3db79f5 (2026-12-06, first change): the offline decoder
    (`synth` made with jit_compile=True), but `harmonic_hops` for the harmonic synth (every
    harmonic at every sample) and blocks of exactly `chunk_frames`, the last one padded."""
    from ddsp_core.playing.streaming import render

    audio = render(synth, {"f0_hz": f0, level_key: level_db}, chunk_frames=chunk_frames, fit_blocks=False)
    mix = audio.sum(axis=0)
    peak = float(np.max(np.abs(mix)))
    return mix * min(1.0, 0.98 / peak) if peak else mix


def offline_rates(instrument, repeats, vibrato_cents=0.0, chunk_seconds=2.0):
    """x real time of the renderings before, as of 3db79f5 and now, timed in turns in this
    process (median of `repeats` each, after one untimed run each), the seconds of each first
    (tracing) run, and the largest difference of each from now's audio. The earlier ones render
    2 s blocks, now's blocks of at most `chunk_seconds`."""
    from ddsp_core.playing import midi, play
    from ddsp_core.playing.streaming import StreamingSynth

    notes = midi.builtin_melody()
    shift = play.octaves_into_range(instrument, [note.pitch for note in notes])
    notes = [midi.Note(n.start_s, n.end_s, n.pitch + int(shift), n.velocity) for n in notes]
    expression = midi.Expression(vibrato_cents=vibrato_cents)
    f0, level = midi.render_plan(notes, instrument.frame_rate, instrument.level_range_db(), expression=expression)[0]
    f0, level = f0[None].astype("float32"), level[None].astype("float32")
    chunk_frames = 2 * instrument.frame_rate
    before_synth = StreamingSynth(instrument.model, instrument.hop_size)
    decoder_synth = StreamingSynth(instrument.model, instrument.hop_size, jit_compile=True)
    decoder_synth.audible_only = False  # Read when its synth function is traced: every harmonic.
    runs = {"before": lambda: render_before(before_synth, f0, level, instrument.level_key, chunk_frames),
            "3db79f5": lambda: render_decoder_only(decoder_synth, f0, level, instrument.level_key, chunk_frames),
            "now": lambda: play.render_features(instrument, f0, level, chunk_seconds=chunk_seconds)[0]}
    first, times, outputs = {}, {name: [] for name in runs}, {}
    for name, run in runs.items():
        started = time.perf_counter()
        outputs[name] = run()
        first[name] = time.perf_counter() - started
    for _ in range(repeats):
        for name, run in runs.items():
            started = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - started)
    seconds = outputs["now"].size / instrument.sample_rate
    differences = {name: float(np.max(np.abs(outputs["now"] - output))) for name, output in outputs.items()}
    return {name: seconds / statistics.median(times[name]) for name in runs}, first, seconds, differences


def streaming_cost(instrument, n_calls):
    from ddsp_core.playing.streaming import StreamingSynth

    frames_per_hop = max(1, int(round(0.02 * instrument.frame_rate)))
    synth = StreamingSynth(instrument.model, instrument.hop_size)
    f0 = np.full((1, frames_per_hop), 440.0, "float32")
    level = np.full((1, frames_per_hop), -20.0, "float32")
    features = {"f0_hz": f0, instrument.level_key: level}
    for _ in range(20):
        synth.process(features)
    times = []
    for _ in range(n_calls):
        started = time.perf_counter()
        synth.process(features)
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times), 1000 * float(np.percentile(times, 99)), frames_per_hop


def midi_accuracy(instrument):
    """Detached scale: per-note pitch error (cents), rest level (dB re notes), onset error (ms)."""
    from ddsp_core import spectral_ops
    from ddsp_core.playing import midi, play

    low, high = instrument.pitch_range_midi()
    pitches = list(range(int(np.ceil(low)) + 1, int(np.floor(high)), 3))
    notes = [midi.Note(0.3 + 1.0 * i, 0.3 + 1.0 * i + 0.6, p, 100) for i, p in enumerate(pitches)]
    performance = play.play_midi(instrument, notes)
    audio, rate = performance.audio, instrument.sample_rate
    f0, confidence = spectral_ops.compute_f0(audio, 100, capacity="full")
    level = np.asarray(spectral_ops.compute_loudness(audio, rate, 100, use_tf=False))
    cents, rests, onsets = [], [], []
    for note in notes:
        middle = slice(int((note.start_s + 0.15) * 100), int((note.end_s - 0.05) * 100))
        measured = 1200 * np.log2(np.median(f0[middle]) / (440 * 2 ** ((note.pitch - 69) / 12)))
        cents.append(float(measured))
        note_level = float(np.median(level[middle]))
        # The rest: from one release time (0.12 s) + 0.1 s after the end, to the next note.
        rest = audio[int((note.end_s + 0.22) * rate):int((note.start_s + 1.0) * rate)]
        body = audio[int((note.start_s + 0.15) * rate):int((note.end_s - 0.05) * rate)]
        rests.append(20 * np.log10(np.sqrt(np.mean(rest**2)) / np.sqrt(np.mean(body**2)) + 1e-12))
        search = np.arange(int((note.start_s - 0.1) * 100), middle.stop)
        reached = search[level[search] >= note_level - 6.0]
        onsets.append(1000 * (reached[0] / 100 - note.start_s) if reached.size else float("nan"))
    return {"notes": len(notes), "max_abs_cents": max(abs(c) for c in cents),
            "median_abs_cents": float(np.median(np.abs(cents))), "loudest_rest_db": max(rests),
            "max_abs_onset_ms": float(np.nanmax(np.abs(onsets))), "median_onset_ms": float(np.nanmedian(onsets))}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="", help="Trained run/export folder for the MIDI accuracy rows.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--stream_calls", type=int, default=300)
    parser.add_argument("--chunk_seconds", type=float, default=2.0,
                        help="Longest block of the rendering now (the earlier renderings: 2 s blocks).")
    parser.add_argument("--skip_accuracy", action="store_true")
    parser.add_argument("--smoke", action="store_true",
                        help="the vst model only, 1 repeat, 10 streaming calls, no accuracy rows (run by tests/benchmarks)")
    args = parser.parse_args(argv)
    kinds = list(MODELS)
    if args.smoke:
        args.repeats, args.stream_calls, args.skip_accuracy, kinds = 1, 10, True, ["vst"]
    _one_core()
    import keras

    from ddsp_core.playing.instrument import load_instrument

    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        for kind in kinds:
            folder = build_random_instrument(kind, os.path.join(scratch, kind))
            instrument = load_instrument(folder)
            for vibrato in (0.0, 30.0):
                rates, first, seconds, differences = offline_rates(instrument, args.repeats, vibrato,
                                                                   args.chunk_seconds)
                what = f"{seconds:.1f} s melody" + (f", vibrato {vibrato:.0f} cents" if vibrato else "")
                rows.append((f"offline render, {kind} model",
                             f"{what}, batch 1, blocks of at most {args.chunk_seconds:g} s",
                             f"{rates['now']:.0f}x real time (3db79f5: {rates['3db79f5']:.0f}x, before: "
                             f"{rates['before']:.0f}x, same run); first run {first['now']:.1f} s (3db79f5: "
                             f"{first['3db79f5']:.1f} s, before: {first['before']:.1f} s); max |now - 3db79f5| "
                             f"{differences['3db79f5']:.1e}, |now - before| {differences['before']:.1e}"))
            median_ms, p99_ms, frames = streaming_cost(instrument, args.stream_calls)
            rows.append((f"streaming, {kind} model", f"20 ms hop = {frames} frame(s) per call",
                         f"{median_ms:.2f} ms median, {p99_ms:.2f} ms p99"))
    if args.model and not args.skip_accuracy:
        accuracy = midi_accuracy(load_instrument(args.model))
        rows.append(("MIDI scale: pitch", f"{accuracy['notes']} detached notes, CREPE full",
                     f"max |error| {accuracy['max_abs_cents']:.1f} cents (median {accuracy['median_abs_cents']:.1f})"))
        rows.append(("MIDI scale: rests", "level between notes re the notes", f"loudest {accuracy['loudest_rest_db']:.1f} dB"))
        rows.append(("MIDI scale: onsets", "first frame within 6 dB of the note",
                     f"max |error| {accuracy['max_abs_onset_ms']:.0f} ms (median {accuracy['median_onset_ms']:.0f} ms)"))
    machine = f"{platform.processor() or platform.machine()}, 1 core, Keras {keras.__version__} ({keras.backend.backend()})"
    print(f"\nbench_play.py, {datetime.date.today()}, {machine}\n")
    print("| what | configuration | result |\n|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
