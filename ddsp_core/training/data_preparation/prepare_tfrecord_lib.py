"""Moved to `ddsp_core.prepare.prepare_tfrecord_lib` (issue 25); this name keeps magenta's layout (`ddsp.training.*`) and
earlier code importing. A re-export: both names are one module object."""

import sys

from ddsp_core.prepare import prepare_tfrecord_lib as _moved

sys.modules[__name__] = _moved
