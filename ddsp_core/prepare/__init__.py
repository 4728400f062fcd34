"""Turning audio files into training examples: decode, features, windows, TFRecords."""
