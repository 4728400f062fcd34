"""Instruments at 44.1 and 48 kHz through the pipeline's steps: prepare -> train -> eval -> sample -> export.

The bundled notes (16 kHz) are resampled up by the prepare step; a tiny decoder trains 2
steps. Whatever it has learned, a 48 kHz model renders harmonics above 8 kHz, where a 16 kHz
model has nothing: the test measures that energy in the generated WAVs and that it lies in
narrow harmonic lines, not spread like noise.
"""

import glob
import io
import json
import os

import gin
import numpy as np
import pytest
import soundfile

from ddsp_core.steps import steps
from tests.training_runs import NOTES_PATTERN
from tests.training.test_summaries import read_events

# A small decoder, and the harmonics started flat (not the quick recipe's -6 dB/octave): the test
# looks for the energy a model at this rate puts above 8 kHz after two steps.
SMALL_DECODER = ["RnnFcDecoder.rnn_channels = 64", "RnnFcDecoder.ch = 64", "RnnFcDecoder.layers_per_stack = 1",
                 "Harmonic.initial_tilt_db_per_octave = 0.0"]


def _above_8_khz(audio, sample_rate):
    """(energy above 8 kHz relative to all, in dB; share of that energy in its strongest 2% of bins)."""
    power = np.abs(np.fft.rfft(audio * np.hanning(audio.size))) ** 2
    high = power[np.fft.rfftfreq(audio.size, 1.0 / sample_rate) > 8000.0]
    strongest = np.sort(high)[::-1][:max(1, high.size // 50)]
    return 10.0 * np.log10(high.sum() / power.sum()), strongest.sum() / high.sum()


@pytest.mark.parametrize("sample_rate, frame_rate", [(48000, 250), (44100, 100)])
def test_an_instrument_at_a_high_sample_rate_end_to_end(tmp_path, sample_rate, frame_rate):
    dataset, model = str(tmp_path / "dataset"), str(tmp_path / "model")
    try:
        manifest = steps.prepare(NOTES_PATTERN, dataset, preset="quick", num_workers=1, sample_rate=sample_rate)
        assert manifest["example_format"] == {"sample_rate": sample_rate, "frame_rate": frame_rate,
                                              "example_secs": 1.0, "hop_secs": 0.5, "centered": False}
        assert manifest["features"]["audio"] == sample_rate and manifest["features"]["audio_16k"] == 16000
        assert manifest["features"]["f0_hz"] == frame_rate

        result = steps.train(dataset, model, num_steps=2, batch_size=2, gin_params=SMALL_DECODER)
        assert result["step"] == 2 and np.isfinite(result["losses"]["total_loss"])
        operative = open(os.path.join(model, "operative_config-0.gin")).read()
        assert f"sample_rate = {sample_rate}" in operative and f"n_samples = {sample_rate}" in operative
        statistics = json.loads(open(os.path.join(model, "model_statistics.json")).read())
        assert (statistics["sample_rate"], statistics["frame_rate"]) == (sample_rate, frame_rate)
        gin.clear_config()

        record = steps.evaluate(dataset, model, str(tmp_path / "eval"),
                                gin_params=SMALL_DECODER + ["evaluate.num_batches = 1"])
        assert record["step"] == 2 and np.isfinite(record["metrics"]["loudness_l1_db"])
        gin.clear_config()

        paths = steps.sample(dataset, model, str(tmp_path / "samples"), gin_params=SMALL_DECODER,
                             listening_examples=False)
        generated = sorted(glob.glob(os.path.join(paths["step_dir"], "*_generated.wav")))
        assert generated
        for path in generated:
            audio, rate = soundfile.read(path)
            assert (rate, audio.size) == (sample_rate, sample_rate)  # 1 s at the dataset's rate.
            level_db, line_share = _above_8_khz(audio, rate)
            assert level_db > -30.0, (path, level_db)  # A 16 kHz model has no energy there at all.
            assert line_share > 0.8, (path, line_share)  # Harmonic lines, not noise.
        # TensorBoard's audio is written at the dataset's rate too.
        rates = {soundfile.info(io.BytesIO(wav)).samplerate
                 for _, _, plugin, _, value in read_events(tmp_path / "samples" / "summaries" / "sample")
                 if plugin == "audio" for wav, _ in value}
        assert rates == {sample_rate}
        gin.clear_config()

        exported = steps.export(model, str(tmp_path / "export"))
        assert exported["sample_rate"] == sample_rate
    finally:
        gin.clear_config()
