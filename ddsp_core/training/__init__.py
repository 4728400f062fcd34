"""Training-side library: datasets, data preparation, and (later) the training loop."""
