"""Exporting a trained model: a SavedModel for serving, DDSP-VST's TFLite controls and their metadata."""
