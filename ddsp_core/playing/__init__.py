"""Playing a trained model: MIDI, timbre transfer, streaming synthesis, export."""
