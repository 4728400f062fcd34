"""Training-side library: data, the solo-instrument model, training, evaluation and sampling.

Importing this package registers every gin configurable of the model and the training
loop. The TFRecord reader (`data`, which needs TensorFlow) and the prepare job
(`data_preparation`) are imported on their own.
"""

from ddsp_core.training import (checkpoints, decoders, distribution, eval_util, evaluators, metrics, models, nn,
                                preprocessing, train_util, trainers)

__all__ = ["checkpoints", "decoders", "distribution", "eval_util", "evaluators", "metrics", "models", "nn",
           "preprocessing", "train_util", "trainers"]
