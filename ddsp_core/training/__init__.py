"""The training loop: data, augmentation, the trainer, the train loop and its guard, distribution,
summaries, gin configs and `ddsp_run`.

Importing this package registers every gin configurable that a model, training or evaluation
gin file names (the gin files say `import ddsp_core.training`, as magenta's say
`import ddsp.training`), so it imports the models and the evaluators as well: the one import
of this package from a higher layer (.importlinter). The TFRecord reader (`data`, which needs
TensorFlow) is imported on its own. The modules that moved out in issue 25 (models, storage,
evaluation, the prepare job) keep their old names here as re-exports.
"""

from ddsp_core import models
from ddsp_core.evaluation import eval_util, evaluators, metrics
from ddsp_core.models import checkpoints, decoders, nn, preprocessing
from ddsp_core.training import distribution, train_util, trainers

__all__ = ["checkpoints", "decoders", "distribution", "eval_util", "evaluators", "metrics", "models", "nn",
           "preprocessing", "train_util", "trainers"]
