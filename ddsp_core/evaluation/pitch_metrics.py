"""Where the errors sit: per input MIDI note, by register, and on stable frames.

The overall f0 and loudness figures (`metrics.F0LoudnessMetrics`) pool every confidently
pitched input frame. These functions split them up, on the same frames ("confident":
input f0_confidence >= the metric's min_f0_confidence and f0 > 0):

    per pitch       one row per input MIDI note, round(hz_to_midi(input f0)): n_frames,
                    loudness L1 (dB), f0 L1 (cents), f0 outlier ratio and, when the
                    synths' audio is given, the harmonic share (energy of the harmonic
                    synth's audio over harmonic + noise, before the reverb).
    registers       the same figures pooled over REGISTER_SEMITONES (5) semitones: the
                    lowest register, MIDI notes L..L+4 where L is the lowest note with at
                    least REGISTER_MIN_NOTE_S (0.1 s) of frames (so a few stray frames,
                    e.g. a tracker's octave slip, do not move it), and the middle register,
                    M-2..M+2 around the median note M of all frames (frame-weighted).
    stable frames   confident frames where the input holds one pitch: within
                    STABLE_WINDOW_S (40 ms, 10 frames at 250 frames/s) either side, every
                    frame is confident and within STABLE_CENTS (50) of this frame's f0, the
                    window lies inside the example, and no input onset or offset
                    (`level_metrics.onset_frames`: the input rising above or falling to 30
                    dB below its example's peak) is that close. What is left out is what a pitch tracker and a
                    model get wrong by timing, not by pitch.

Every confident frame that is not stable is unstable for one of two reasons, tested in
this order: a transition (a confident frame within the window is more than STABLE_CENTS
away: a note change, a glide, a wide vibrato) or an onset/offset (the window leaves the
example, reaches a frame that is not confident, i.e. a confidence drop, or an input
onset/offset). `outlier_locations` sorts the f0 outliers of a batch into these two, then
`low generated confidence` (CREPE's confidence on the generated audio below the input
threshold: the model's audio has no clear pitch there) and `elsewhere`, so the four
fractions sum to 1.

Arrays are [batch, n_frames], aligned at frame 0; all functions are NumPy and pure.
"""

import numpy as np

from ddsp_core.evaluation import level_metrics

# The input f0 of a stable frame stays within this many cents of itself over the window.
STABLE_CENTS = 50.0
# Half-width of the stability window (and the distance kept from onsets, offsets and confidence drops), s.
STABLE_WINDOW_S = 0.040
# Width of a register, in semitones.
REGISTER_SEMITONES = 5
# The lowest register starts at the lowest MIDI note with at least this much audio (in confident frames), s.
REGISTER_MIN_NOTE_S = 0.1
# MIDI notes 0..127 are counted; input f0 outside them is clipped to the nearest.
N_NOTES = 128
# Outlier locations, in the order they are tested; the metrics are 'f0_outliers_' + name.
OUTLIER_LOCATIONS = ("at_transitions", "near_onsets_offsets", "low_generated_confidence", "elsewhere")
# The per-note sums that `note_sums` returns and `per_pitch_rows` reads.
SUM_NAMES = ("n_frames", "loudness_error_db", "f0_error_cents", "n_outliers", "harmonic_energy", "noise_energy")
_NOTE_NAMES = ("C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B")


def midi_notes(f0_hz):
    """Nearest MIDI note of each frame, round(69 + 12 log2(f0 / 440)) (as `core.hz_to_midi`).

    Args:
        f0_hz: f0 in Hz, any shape.

    Returns:
        int64 array of that shape, clipped to 0..N_NOTES - 1; 0 where f0 <= 0.
    """
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        notes = 69.0 + 12.0 * np.log2(np.where(f0_hz > 0, f0_hz, 1.0) / 440.0)
    return np.where(f0_hz > 0, np.clip(np.rint(notes), 0, N_NOTES - 1), 0).astype(np.int64)


def note_name(midi):
    """'C4' for MIDI note 60, 'A#4' for 70 (scientific pitch notation)."""
    return f"{_NOTE_NAMES[int(midi) % 12]}{int(midi) // 12 - 1}"


def window_frames(frame_rate, window_s=STABLE_WINDOW_S):
    """Half-width of the stability window in frames: round(window_s * frame_rate), at least 1."""
    return max(1, int(round(window_s * frame_rate)))


def _shifted(x, shift, fill):
    """x [batch, n_frames] moved by `shift` frames: out[:, t] = x[:, t + shift], `fill` outside."""
    out = np.full_like(x, fill)
    n_frames = x.shape[1]
    if shift >= 0:
        out[:, :n_frames - shift] = x[:, shift:]
    else:
        out[:, -shift:] = x[:, :n_frames + shift]
    return out


def unstable_frames(f0_hz, confident, loudness_db, frame_rate, window_s=STABLE_WINDOW_S, stable_cents=STABLE_CENTS):
    """Why confident input frames are not stable: (transition, onset_offset) masks.

    Args:
        f0_hz: Input f0 in Hz, [batch, n_frames].
        confident: Input frames compared for f0 (confidence >= threshold and f0 > 0),
            bool [batch, n_frames].
        loudness_db: Input loudness in dB, [batch, n_frames] (for onsets and offsets).
        frame_rate: Frames per second.
        window_s: Half-width of the window, s (see `window_frames`).
        stable_cents: Largest pitch difference within the window of a stable frame.

    Returns:
        (transition, onset_offset), bool [batch, n_frames], both False on frames that are
        not confident and never both True: transition where a confident frame within the
        window is more than stable_cents from this frame's f0; onset_offset where not a
        transition but the window leaves the example, holds a frame that is not confident
        or an input onset or offset inside the example (`level_metrics.onset_frames`: the
        first sounding frame of a span and the first quiet frame after it; the example's
        ends are covered by the window rule). Stable = confident & neither.
    """
    f0_hz = np.asarray(f0_hz, dtype=np.float64)
    confident = np.asarray(confident, dtype=bool)
    loudness_db = np.asarray(loudness_db, dtype=np.float64)
    if not f0_hz.shape == confident.shape == loudness_db.shape or f0_hz.ndim != 2:
        raise ValueError(f"f0_hz, confident and loudness_db must have one shape [batch, n_frames], got "
                         f"{f0_hz.shape}, {confident.shape} and {loudness_db.shape}.")
    half = window_frames(frame_rate, window_s)
    cents = 1200.0 * np.log2(np.where(confident, f0_hz, 1.0))  # [batch, n_frames]
    edges = np.zeros_like(confident)  # Input onsets and offsets inside the example.
    for i, example in enumerate(loudness_db):
        for start, end in level_metrics.onset_frames(example):
            edges[i, [frame for frame in (start, end) if 0 < frame < edges.shape[1]]] = True
    transition = np.zeros_like(confident)
    onset_offset = np.zeros_like(confident)
    for shift in range(-half, half + 1):
        inside = _shifted(np.ones_like(confident), shift, False)  # The neighbour exists.
        neighbour_confident = _shifted(confident, shift, False)
        far = np.abs(_shifted(cents, shift, 0.0) - cents) > stable_cents
        transition |= neighbour_confident & far
        onset_offset |= ~inside | ~neighbour_confident | _shifted(edges, shift, False)
    transition &= confident
    return transition, onset_offset & confident & ~transition


def outlier_locations(outlier, transition, onset_offset, low_generated_confidence):
    """How many outlier frames sit where, each counted at the first that applies.

    Args:
        outlier: f0 outlier frames (confident input frames only), bool [batch, n_frames].
        transition, onset_offset: from `unstable_frames`, bool [batch, n_frames].
        low_generated_confidence: CREPE's confidence on the generated audio is low there,
            bool [batch, n_frames].

    Returns:
        {name: int} for OUTLIER_LOCATIONS: at_transitions, near_onsets_offsets,
        low_generated_confidence, elsewhere; they sum to the number of outliers.
    """
    left = np.asarray(outlier, dtype=bool).copy()
    counts = {}
    for name, mask in zip(OUTLIER_LOCATIONS[:-1], (transition, onset_offset, low_generated_confidence)):
        here = left & np.asarray(mask, dtype=bool)
        counts[name] = int(np.sum(here))
        left &= ~here
    counts[OUTLIER_LOCATIONS[-1]] = int(np.sum(left))
    return counts


def note_sums(notes, mask, loudness_errors_db, f0_errors_cents, outlier, harmonic_energy=None, noise_energy=None):
    """Per-note sums over the masked frames, to pool over batches and then read with `per_pitch_rows`.

    Args:
        notes: MIDI note of each frame (`midi_notes`), int [batch, n_frames].
        mask: Frames counted (the confident ones), bool [batch, n_frames].
        loudness_errors_db: |generated - input| loudness in dB, [batch, n_frames].
        f0_errors_cents: |generated - input| f0 in cents, [batch, n_frames].
        outlier: f0 outlier frames, bool [batch, n_frames].
        harmonic_energy, noise_energy: Optional mean square of the harmonic and the noise
            synth's audio per frame (`health.frame_energy`), [batch, n_frames].

    Returns:
        {name: float64 [N_NOTES]} for SUM_NAMES (the energies only when given).
    """
    mask = np.asarray(mask, dtype=bool)
    notes = np.asarray(notes)[mask]  # [n_masked]
    values = {"n_frames": np.ones(mask.shape), "loudness_error_db": loudness_errors_db,
              "f0_error_cents": f0_errors_cents, "n_outliers": outlier}
    if harmonic_energy is not None and noise_energy is not None:
        values.update(harmonic_energy=harmonic_energy, noise_energy=noise_energy)
    return {name: np.bincount(notes, weights=np.asarray(value, dtype=np.float64)[mask], minlength=N_NOTES)
            for name, value in values.items()}


def add_sums(total, more):
    """`total` + `more` (dicts of `note_sums`); None + more = more. An energy missing in either is dropped."""
    if total is None:
        return {name: value.copy() for name, value in more.items()}
    return {name: total[name] + more[name] for name in total if name in more}


def _figures(sums, selected):
    """The pooled figures of the notes `selected` (bool [N_NOTES]); None where they have no frames."""
    n_frames = float(np.sum(sums["n_frames"][selected]))
    if n_frames == 0:
        return {"n_frames": 0, "loudness_l1_db": None, "f0_l1_cents": None, "f0_outlier_ratio": None,
                **({"harmonic_share": None} if "harmonic_energy" in sums else {})}
    figures = {
        "n_frames": int(n_frames),
        "loudness_l1_db": float(np.sum(sums["loudness_error_db"][selected]) / n_frames),
        "f0_l1_cents": float(np.sum(sums["f0_error_cents"][selected]) / n_frames),
        "f0_outlier_ratio": float(np.sum(sums["n_outliers"][selected]) / n_frames),
    }
    if "harmonic_energy" in sums:
        harmonic = float(np.sum(sums["harmonic_energy"][selected]))
        total = harmonic + float(np.sum(sums["noise_energy"][selected]))
        figures["harmonic_share"] = harmonic / total if total > 0 else None
    return figures


def per_pitch_rows(sums):
    """One row per MIDI note with frames, lowest first.

    Returns:
        List of {'midi': int, 'note': 'C4', 'n_frames': int, 'loudness_l1_db',
        'f0_l1_cents', 'f0_outlier_ratio': float and, when `sums` hold the synths'
        energies, 'harmonic_share': float (None if both synths are silent there)}.
    """
    if sums is None:
        return []
    notes = np.flatnonzero(sums["n_frames"] > 0)
    return [{"midi": int(note), "note": note_name(note), **_figures(sums, np.arange(N_NOTES) == note)}
            for note in notes]


def register_notes(sums, min_note_frames=1, semitones=REGISTER_SEMITONES):
    """(lowest, middle) registers as (first, last) MIDI notes, inclusive; None when there is no frame.

    lowest: L..L + semitones - 1, L the lowest note with at least min_note_frames frames
    (the lowest note with any frame if none has that many). middle: the `semitones` notes
    centred on M, the median note of all frames (the lowest note at which the cumulative
    frame count reaches half of all frames).
    """
    counts = np.asarray(sums["n_frames"]) if sums is not None else np.zeros([N_NOTES])
    if np.sum(counts) == 0:
        return None, None
    enough = np.flatnonzero(counts >= max(1, min_note_frames))
    lowest = int(enough[0]) if enough.size else int(np.flatnonzero(counts > 0)[0])
    median = int(np.searchsorted(np.cumsum(counts), np.sum(counts) / 2.0))
    below = (semitones - 1) // 2
    return (lowest, lowest + semitones - 1), (median - below, median - below + semitones - 1)


def register_summaries(sums, min_note_frames=1, semitones=REGISTER_SEMITONES):
    """The register figures (see the module docstring) as metrics.

    Returns:
        {'lowest_register_midi', 'middle_register_midi': the lowest register's first note
        and the middle register's centre note (int), and for each of 'lowest_register_' and
        'middle_register_': 'loudness_l1_db', 'f0_l1_cents' and, when `sums` hold the
        synths' energies, 'harmonic_share'}; None values when there is no frame.
    """
    lowest, middle = register_notes(sums, min_note_frames, semitones)
    names = ["loudness_l1_db", "f0_l1_cents"] + (["harmonic_share"] if sums and "harmonic_energy" in sums else [])
    result = {"lowest_register_midi": None if lowest is None else lowest[0],
              "middle_register_midi": None if middle is None else middle[0] + (semitones - 1) // 2}
    for prefix, span in (("lowest_register_", lowest), ("middle_register_", middle)):
        figures = {} if span is None else _figures(sums, (np.arange(N_NOTES) >= span[0])
                                                   & (np.arange(N_NOTES) <= span[1]))
        result.update({prefix + name: figures.get(name) for name in names})
    return result
