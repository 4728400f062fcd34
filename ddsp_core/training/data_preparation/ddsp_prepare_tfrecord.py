"""Moved to `ddsp_core.prepare.ddsp_prepare_tfrecord` (issue 25); this name keeps magenta's layout (`ddsp.training.*`) and
earlier code importing. A re-export: both names are one module object."""

import sys

from ddsp_core.prepare import ddsp_prepare_tfrecord as _moved

sys.modules[__name__] = _moved
