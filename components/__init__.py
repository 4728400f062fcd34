"""The clarinet pipeline's steps as kfp lightweight Python components (one folder each).

Every component runs on the project's image (see `image.py`) and is a thin shell over a
function of `ddsp_core.steps.steps`.
"""
