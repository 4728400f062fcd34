"""Moved to `ddsp_core.models` (issue 25); this name keeps magenta's layout (`ddsp.training.models`)
and earlier code importing. A re-export: both names, and their submodules, are the same module objects."""

import sys

import ddsp_core.models as _moved
from ddsp_core.models import autoencoder as _autoencoder
from ddsp_core.models import model as _model

sys.modules.update({__name__ + ".autoencoder": _autoencoder, __name__ + ".model": _model})
sys.modules[__name__] = _moved
