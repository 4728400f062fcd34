"""`ddsp_pipeline rehearse` (being built: issue 24)."""


def add_arguments(parser):
    """Registers the flags of `ddsp_pipeline rehearse` on `parser`."""


def main(args):
    """Runs `ddsp_pipeline rehearse` for parsed `args`; returns the exit status."""
    print("ddsp_pipeline rehearse: not built yet.")
    return 2
