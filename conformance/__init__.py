"""Conformance with magenta's ddsp 3.7.0: the code that runs magenta's own package, never a dependency.

    magenta_venv.py         builds the venv holding ddsp==3.7.0 (python3.11, TensorFlow 2.21) on first use
    magenta_dsp_compat.py   magenta's own DSP test files run against ddsp_core, only the imports changed:
                            python -m conformance.magenta_dsp_compat --markdown
    magenta_side/           scripts run by magenta's interpreter in that venv: one benchmark case
                            (run_case.py, for benchmarks/compare_magenta.py), resynthesis from magenta
                            checkpoints (generate.py, for benchmarks/time_to_quality.py), and a stand-in
                            for the `crepe` package, which does not install here (crepe/)
"""
