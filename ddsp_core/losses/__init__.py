"""Losses, one kind per module: `base` (`Loss`, `mean_difference`, `LossGroup`), `spectral`
(the multi-scale spectral loss), `controls` (losses on synthesizer controls), `embedding`
(pretrained embeddings such as CREPE's) and `sinusoid` (experimental losses between sets of
sinusoids). Every class and function is importable from here under magenta's names
(`ddsp.losses.SpectralLoss`), the HMM note transcriber (`hmm`) too, and gin knows the classes as
`losses.<Class>`.
"""

from ddsp_core.hmm import HmmTranscriber
from ddsp_core.losses.base import LOSS_TYPES, Loss, LossGroup, TensorDict, mean_difference
from ddsp_core.losses.controls import (FilteredNoiseConsistencyLoss, HarmonicConsistencyLoss, ParamLoss, amp_loss,
                                       freq_loss)
from ddsp_core.losses.embedding import (CREPE_LAYER_SCALES, EmbeddingLoss, PretrainedCREPE,
                                        PretrainedCREPEEmbeddingLoss)
from ddsp_core.losses.sinusoid import KDEConsistencyLoss, TWMLoss, WassersteinConsistencyLoss, wasserstein_distance
from ddsp_core.losses.spectral import SpectralLoss

__all__ = [
    "CREPE_LAYER_SCALES", "EmbeddingLoss", "FilteredNoiseConsistencyLoss", "HarmonicConsistencyLoss",
    "HmmTranscriber", "KDEConsistencyLoss", "LOSS_TYPES", "Loss", "LossGroup", "ParamLoss", "PretrainedCREPE",
    "PretrainedCREPEEmbeddingLoss", "SpectralLoss", "TWMLoss", "TensorDict", "WassersteinConsistencyLoss",
    "amp_loss", "freq_loss", "mean_difference", "wasserstein_distance",
]
