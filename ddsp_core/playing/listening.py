"""Two listening examples for the sample page: the instrument played, not only resynthesized.

    90_melody.wav / .png     the built-in melody (ddsp_core/playing/midi.py) played from MIDI
    91_transfer.wav / .png   a flute phrase (package data, from FluidR3_GM's flute; see
                             ddsp_core/playing/data/render_phrase.py) transferred to the instrument
Each PNG is `plotting.performance_figure` (as `ddsp_play` draws it): the recording's spectrogram
(transfer only), the output's, and the f0 and level curves played.
The names follow the sample page's file pattern, so `samples.self_contained_page` inlines them.
"""

import html
import logging
import os

from ddsp_core import progress
from ddsp_core.io import storage

TRANSFER_PHRASE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "data", "flute_phrase.flac")
EXAMPLES = (("90_melody", "The built-in melody, played from MIDI"),
            ("91_transfer", "A flute phrase (another instrument) transferred to this one"))


def write_listening_examples(model_dir, step_dir, crepe_capacity="tiny"):
    """Plays the melody and the transfer with the model of `model_dir` into `step_dir` (local or gs://).

    Returns:
        [(name, title, facts)] of the examples written.
    """
    from ddsp_core.playing import midi, play
    from ddsp_core.playing.instrument import load_instrument

    instrument = load_instrument(model_dir)
    notes = midi.builtin_melody()
    shift = play.octaves_into_range(instrument, [note.pitch for note in notes])
    performers = {
        "90_melody": lambda: play.play_midi(instrument, notes, pitch_shift=shift, allow_out_of_range=True,
                                            what="The built-in melody"),
        "91_transfer": lambda: play.play_recording(instrument, TRANSFER_PHRASE, crepe_capacity=crepe_capacity,
                                                   allow_out_of_range=True),
    }
    written = []
    with progress.Progress("listening examples", len(EXAMPLES), "examples") as shown:
        for name, title in EXAMPLES:
            performance = performers[name]()
            play.write_outputs(performance, storage.join(step_dir, f"{name}.wav"))
            written.append((name, title, performance.facts))
            logging.info("Listening example %s: %s", name, performance.facts)
            shown.update()
    return written


def section_html(examples):
    """The page section with a player and the plot of each example."""
    escape = html.escape
    parts = ['<section class="example"><h2>Play the instrument</h2>']
    for name, title, facts in examples:
        details = ", ".join(f"{key} {value}" for key, value in facts.items())
        parts.append(f"<h3>{escape(title)}</h3><p>{escape(details)}</p>")
        parts.append(f'<audio controls preload="metadata" src="{escape(name)}.wav"></audio>')
        parts.append(f'<img src="{escape(name)}.png" alt="{escape(title)}" loading="lazy">')
    parts.append("</section>")
    return "\n".join(parts) + "\n"


def add_to_page(step_dir, examples):
    """Inserts `section_html(examples)` into step_dir/index.html, before its end."""
    path = storage.join(step_dir, "index.html")
    page = storage.read_bytes(path).decode("utf-8")
    page = page.replace("</body></html>", section_html(examples) + "</body></html>", 1)
    storage.write_bytes(path, page.encode("utf-8"))
