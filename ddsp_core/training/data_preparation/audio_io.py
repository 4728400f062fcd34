"""Moved to `ddsp_core.io.audio_io` (issue 25); this name keeps magenta's layout (`ddsp.training.*`) and
earlier code importing. A re-export: both names are one module object."""

import sys

from ddsp_core.io import audio_io as _moved

sys.modules[__name__] = _moved
