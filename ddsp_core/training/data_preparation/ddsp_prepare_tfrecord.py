"""Moved to `ddsp_core.prepare.ddsp_prepare_tfrecord` (issue 25); this name keeps magenta's layout (`ddsp.training.*`) and
earlier code importing. A re-export: both names are one module object."""

import sys

from ddsp_core.prepare import ddsp_prepare_tfrecord as _moved

if __name__ == "__main__":  # `python -m ddsp_core.training.<module>`, as magenta's `python -m ddsp.training...`
    sys.exit(_moved.console_main())
sys.modules[__name__] = _moved
