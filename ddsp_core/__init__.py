"""ddsp_core: Differentiable Digital Signal Processing on Keras 3.

The public API mirrors magenta's `ddsp`, so `import ddsp_core as ddsp` ports code:
`core` (DSP functions), `spectral_ops` (with CREPE f0 from `crepe`), `processors`, `dags`, `synths`, `effects`,
`losses`.
Everything is written with keras.ops and runs on Keras' TensorFlow (default) and JAX
backends.
"""

from ddsp_core import core, crepe, dags, effects, losses, processors, spectral_ops, synths

__version__ = "0.1.0"

__all__ = ["core", "crepe", "dags", "effects", "losses", "processors", "spectral_ops", "synths"]
