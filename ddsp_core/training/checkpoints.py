"""Moved to `ddsp_core.models.checkpoints` (issue 25); this name keeps magenta's layout (`ddsp.training.*`) and
earlier code importing. A re-export: both names are one module object."""

import sys

from ddsp_core.models import checkpoints as _moved

sys.modules[__name__] = _moved
