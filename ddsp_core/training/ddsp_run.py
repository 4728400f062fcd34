"""Moved to `ddsp_core.ddsp_run` (issue 25: the command runs training, evaluation and sampling, so it
sits above them); this name keeps magenta's layout (`ddsp.training.ddsp_run`) and earlier code
importing. A re-export: both names are one module object."""

import sys

from ddsp_core import ddsp_run as _moved

if __name__ == "__main__":  # `python -m ddsp_core.training.<module>`, as magenta's `python -m ddsp.training...`
    sys.exit(_moved.console_main())
sys.modules[__name__] = _moved
