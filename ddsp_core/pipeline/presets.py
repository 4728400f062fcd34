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
  held-out eval split (the held-out audio, or 10% of the files).
- `vst`: `quick`'s run with DDSP-VST's model (models/vst.gin: f0 and frame power in, a GRU
  of 512) on features at 50 frames/s, for export to the DDSP-VST plugin.

`quick` and `full` train the same recipe (RECIPE_GIN_FILES) on the solo-instrument model.
"""

import dataclasses

# The recipe of quick and full, chosen on the held-out validation clarinet (benchmarks/RESULTS.md,
# "Quality"): no reverb (the bundled material is dry) and gain augmentation.
RECIPE_GIN_FILES = ("models/solo_instrument_dry.gin", "augmentation/gain.gin")
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


@dataclasses.dataclass(frozen=True)
class Preset:
    """Settings of one pipeline run (see the module docstring)."""

    name: str
    description: str
    # Prepare.
    crepe_capacity: str
    example_secs: float
    hop_secs: float
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
    # Feature frames per second the prepare step writes; the train step checks the dataset has it.
    frame_rate: int = 250
    # The model's gin file (shipped name), parsed first by the train step.
    model_gin: str = "models/solo_instrument.gin"

    def n_samples(self, sample_rate=16000):
        """Samples in one example at `sample_rate` Hz."""
        return int(round(self.example_secs * sample_rate))


PRESETS = {
    "quick": Preset(
        name="quick",
        description="A first model on a CPU: tiny CREPE, 1 s examples, 600 steps (~10 min on 2 cores).",
        crepe_capacity="tiny", example_secs=1.0, hop_secs=0.5, eval_split_fraction=0.0, num_shards=2,
        num_steps=600, batch_size=16, steps_per_save=200, steps_per_summary=50,
        # 40 batches of 8: every 1 s window of the bundled validation clarinet (about 290).
        eval_crepe_capacity="tiny", eval_batches=40, sample_examples=6,
        gin_files=RECIPE_GIN_FILES,
        gin_params=QUICK_GIN_PARAMS,
    ),
    "full": Preset(
        name="full",
        description="The real experiment: full CREPE, 4 s examples, 30000 steps at batch 16 (a GPU node).",
        crepe_capacity="full", example_secs=4.0, hop_secs=1.0, eval_split_fraction=0.1, num_shards=8,
        num_steps=30000, batch_size=16, steps_per_save=300, steps_per_summary=300,
        eval_crepe_capacity="full", eval_batches=16, sample_examples=8,
        gin_files=RECIPE_GIN_FILES,
    ),
    "vst": Preset(
        name="vst",
        description="quick's run with DDSP-VST's model (f0 and power at 50 frames/s, GRU 512), for the plugin.",
        crepe_capacity="tiny", example_secs=1.0, hop_secs=0.5, eval_split_fraction=0.0, num_shards=2,
        num_steps=600, batch_size=16, steps_per_save=200, steps_per_summary=50,
        eval_crepe_capacity="tiny", eval_batches=40, sample_examples=6,
        # models/vst.gin has no reverb (the plugin adds its own); gain augmentation shifts power_db too.
        model_gin="models/vst.gin", gin_files=("augmentation/gain.gin",), gin_params=QUICK_GIN_PARAMS,
        frame_rate=50,
    ),
}


def get_preset(name):
    """The preset called `name`.

    Raises:
        ValueError: no such preset; the message lists the known ones.
    """
    try:
        return PRESETS[name]
    except KeyError:
        known = ", ".join(f"'{key}' ({preset.description})" for key, preset in PRESETS.items())
        raise ValueError(f"Unknown preset {name!r}. Known presets: {known}.") from None
