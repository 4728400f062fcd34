"""Presets of the clarinet pipeline: how much data work and training one run does.

A preset fixes the prepare job's CREPE size and frame rate, the model, the training length
and batch, and the evaluation's settings. Pipeline parameters (num_steps, batch_size,
crepe_capacity) override it when set; gin files and gin params given to the pipeline are
applied after the preset's own bindings, so they override those too.

- `quick`: a first playable model on a CPU: tiny CREPE, 600 steps on 1 s examples, about
  10 minutes on 2 cores; it follows loudness through attacks, releases and rests on the
  held-out clarinet (benchmarks/RESULTS.md, "Quality").
- `full`: the real experiment, at magenta's solo-instrument scale: full CREPE, 4 s
  examples, 30000 steps at batch 16 (about 15 minutes on an H200; days on a CPU), a
  held-out eval split (the held-out audio, or 10% of the files). Its eval runs full CREPE
  on the generated audio at 50 frames/s (every 5th frame; EVAL_CREPE_FRAME_RATE).
- `hq`: `full` at 48 kHz, with a model whose sizes are set for that rate
  (models/solo_instrument_hq.gin: 100 harmonics, 193 noise bands, the loss's FFT sizes
  three times magenta's so that they span the same times and bands).
- `vst`: `quick`'s run with DDSP-VST's model (models/vst.gin: f0 and frame power in, a GRU
  of 512) on features at 50 frames/s, for export to the DDSP-VST plugin (16 kHz only: the
  plugin's format fixes it).

`quick`, `full` and `hq` train the same recipe (RECIPE_GIN_FILES) on the solo-instrument model.
Every preset has an `ExampleFormat` (ddsp_core/example_format.py); `with_sample_rate` gives a
preset's run at another audio rate (the pipeline's --sample-rate).
"""

import dataclasses

from ddsp_core.example_format import ExampleFormat, frame_rates_for
from ddsp_core.export.vst import SAMPLE_RATE as VST_SAMPLE_RATE

# The recipe of quick and full, chosen on the held-out validation clarinet (benchmarks/RESULTS.md,
# "Quality"): no reverb (the bundled material is dry) and gain augmentation.
RECIPE_GIN_FILES = ("models/solo_instrument_dry.gin", "augmentation/gain.gin")
# hq's: the same recipe after the 48 kHz model (its dry variant: the hq file's dag has no reverb).
RECIPE_HQ_GIN_FILES = ("augmentation/gain.gin",)
# quick's training bindings: a short run from scratch on the bundled notes.
QUICK_GIN_PARAMS = (
    # A higher learning rate than the full recipe's 3e-4: a few hundred steps must count.
    "learning_rate = 0.001",
    # ... ramped up over the first 100 steps: at full speed from step 0, one run in three
    # drove the harmonic amplitude to zero and left the notes to the noise synth.
    "Trainer.warmup_steps = 100",
    # Bundled notes are synthetic and clean; tiny CREPE is less confident than full.
    "F0LoudnessMetrics.min_f0_confidence = 0.5",
)
# ... and its recipe file: the initial spectral tilt, the cosine anneal and the averaged weights
# (a file, so that eval reads them from the run's operative config, not from the preset).
QUICK_RECIPE_GIN_FILE = "recipes/quick.gin"
# full's and hq's eval: full CREPE on the generated audio at 50 frames/s, not the features' 250 (each frame
# decoded alone): on two trained clarinet models its f0 L1 read within 3% (0.12 cents) and its outlier ratio
# within 0.03 points of CREPE on every frame, at a quarter of the CPU time; tiny CREPE read 20-37% higher
# (benchmarks/RESULTS.md, "Eval's CREPE on the generated audio"). quick and vst keep tiny on every frame.
EVAL_CREPE_FRAME_RATE = 50


@dataclasses.dataclass(frozen=True)
class Preset:
    """Settings of one pipeline run (see the module docstring)."""

    name: str
    description: str
    # The examples the prepare step cuts (audio rate, frame rate, length, hop), and so the model's.
    example_format: ExampleFormat
    # Prepare.
    crepe_capacity: str
    eval_split_fraction: float
    num_shards: int
    # Train.
    num_steps: int
    batch_size: int
    steps_per_save: int
    steps_per_summary: int
    # Eval and sample: CREPE run on the generated audio, and how much audio.
    eval_crepe_capacity: str
    eval_batches: int
    sample_examples: int
    # Gin files (shipped names) and bindings applied after the model's and dataset's files,
    # before the user's.
    gin_files: tuple = ()
    gin_params: tuple = ()
    # The model's gin file (shipped name), parsed first by the train step.
    model_gin: str = "models/solo_instrument.gin"
    # The one audio rate the preset's model can be exported at (DDSP-VST's), or 0 for any.
    fixed_sample_rate: int = 0
    # Frames per second the eval's CREPE runs at on the generated audio (F0LoudnessMetrics.crepe_frame_rate:
    # every k-th feature frame, the f0 figures on those frames), or 0 for every frame.
    eval_crepe_frame_rate: int = 0

    def with_sample_rate(self, sample_rate):
        """This preset at `sample_rate` Hz (0: unchanged): the same example lengths, at the preset's
        frame rate if it divides the rate, else the highest one that does (100 frames/s at 44.1
        kHz, 50 at 22.05 kHz: a frame must be a whole number of samples at the rate and at 16 kHz).

        Raises:
            ValueError: the preset's model is made for one rate only (vst), or the rate
                fits no frame rate the example lengths allow.
        """
        current = self.example_format
        if not sample_rate or int(sample_rate) == current.sample_rate:
            return self
        sample_rate = int(sample_rate)
        if self.fixed_sample_rate and sample_rate != self.fixed_sample_rate:
            raise ValueError(f"The '{self.name}' preset makes models at {self.fixed_sample_rate} Hz only (the "
                             f"DDSP-VST plugin's format), not {sample_rate} Hz: leave --sample-rate out, or use "
                             "the quick, full or hq preset.")
        for frame_rate in frame_rates_for(sample_rate, at_most=current.frame_rate):
            try:
                example_format = dataclasses.replace(current, sample_rate=sample_rate, frame_rate=frame_rate)
            except ValueError:  # example_secs or hop_secs is not a whole number of frames at this rate.
                continue
            return dataclasses.replace(self, example_format=example_format)
        raise ValueError(f"No frame rate fits {sample_rate} Hz with the '{self.name}' preset's examples "
                         f"({current.describe()}): choose a rate such as 16000, 22050, 44100 or 48000 Hz.")


PRESETS = {
    "quick": Preset(
        name="quick",
        description="A first model on a CPU: tiny CREPE, 1 s examples, 600 steps (~10 min on 2 cores).",
        example_format=ExampleFormat(example_secs=1.0, hop_secs=0.5),  # 16 kHz, 250 frames/s.
        crepe_capacity="tiny", eval_split_fraction=0.0, num_shards=2,
        num_steps=600, batch_size=16, steps_per_save=200, steps_per_summary=50,
        # 40 batches of 8: every 1 s window of the bundled validation clarinet (about 290).
        eval_crepe_capacity="tiny", eval_batches=40, sample_examples=6,
        gin_files=(*RECIPE_GIN_FILES, QUICK_RECIPE_GIN_FILE),
        gin_params=QUICK_GIN_PARAMS,
    ),
    "full": Preset(
        name="full",
        description="The real experiment: full CREPE, 4 s examples, 30000 steps at batch 16 (a GPU node).",
        example_format=ExampleFormat(example_secs=4.0, hop_secs=1.0),  # 16 kHz, 250 frames/s.
        crepe_capacity="full", eval_split_fraction=0.1, num_shards=8,
        num_steps=30000, batch_size=16, steps_per_save=300, steps_per_summary=300,
        # Full CREPE on every 5th frame (EVAL_CREPE_FRAME_RATE): a quarter of the eval's CREPE time.
        eval_crepe_capacity="full", eval_batches=16, sample_examples=8, eval_crepe_frame_rate=EVAL_CREPE_FRAME_RATE,
        gin_files=RECIPE_GIN_FILES,
    ),
    "hq": Preset(
        name="hq",
        description="full at 48 kHz: the upper register kept (100 harmonics, 193 noise bands), a GPU node.",
        example_format=ExampleFormat(sample_rate=48000, example_secs=4.0, hop_secs=1.0),  # 250 frames/s.
        crepe_capacity="full", eval_split_fraction=0.1, num_shards=8,
        num_steps=30000, batch_size=16, steps_per_save=300, steps_per_summary=300,
        eval_crepe_capacity="full", eval_batches=16, sample_examples=8, eval_crepe_frame_rate=EVAL_CREPE_FRAME_RATE,
        model_gin="models/solo_instrument_hq.gin", gin_files=RECIPE_HQ_GIN_FILES,
    ),
    "vst": Preset(
        name="vst",
        description="quick's run with DDSP-VST's model (f0 and power at 50 frames/s, GRU 512), for the plugin.",
        example_format=ExampleFormat(frame_rate=50, example_secs=1.0, hop_secs=0.5),  # 16 kHz.
        crepe_capacity="tiny", eval_split_fraction=0.0, num_shards=2,
        num_steps=600, batch_size=16, steps_per_save=200, steps_per_summary=50,
        eval_crepe_capacity="tiny", eval_batches=40, sample_examples=6,
        # models/vst.gin has no reverb (the plugin adds its own); gain augmentation shifts power_db too.
        model_gin="models/vst.gin", gin_files=("augmentation/gain.gin", QUICK_RECIPE_GIN_FILE),
        gin_params=QUICK_GIN_PARAMS,
        fixed_sample_rate=VST_SAMPLE_RATE,
    ),
}


def get_preset(name, sample_rate=0):
    """The preset called `name`, at `sample_rate` Hz (0: the preset's; `Preset.with_sample_rate`).

    Raises:
        ValueError: no such preset; the message lists the known ones.
    """
    try:
        preset = PRESETS[name]
    except KeyError:
        known = ", ".join(f"'{key}' ({preset.description})" for key, preset in PRESETS.items())
        raise ValueError(f"Unknown preset {name!r}. Known presets: {known}.") from None
    return preset.with_sample_rate(sample_rate)
