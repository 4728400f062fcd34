"""`ddsp_pipeline tune` (being built: issue 24)."""


def add_arguments(parser):
    """Registers the flags of `ddsp_pipeline tune` on `parser`."""


def main(args):
    """Runs `ddsp_pipeline tune` for parsed `args`; returns the exit status."""
    print("ddsp_pipeline tune: not built yet.")
    return 2
