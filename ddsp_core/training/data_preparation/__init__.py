"""Moved to `ddsp_core.prepare` (the prepare job) and `ddsp_core.io.audio_io` (issue 25); this
name keeps magenta's layout (`ddsp.training.data_preparation`) and earlier code importing."""
