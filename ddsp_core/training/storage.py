"""Moved to `ddsp_core.io.storage` (issue 25); this name keeps magenta's layout (`ddsp.training.*`) and
earlier code importing. A re-export: both names are one module object."""

import sys

from ddsp_core.io import storage as _moved

sys.modules[__name__] = _moved
