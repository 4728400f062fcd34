"""Tests for accelerators.allow_memory_growth (on this CPU-only machine: that it is safe and sets JAX's switch)."""

import os
import subprocess
import sys


def test_allow_memory_growth_is_safe_without_a_gpu_and_disables_jax_preallocation():
    code = ("import os; os.environ.pop('XLA_PYTHON_CLIENT_PREALLOCATE', None)\n"
            "from ddsp_core.training import accelerators\n"
            "accelerators.allow_memory_growth()\n"
            "import keras; keras.ops.convert_to_numpy(keras.ops.ones(3))\n"
            "print(os.environ['XLA_PYTHON_CLIENT_PREALLOCATE'])")
    for backend in ("tensorflow", "jax"):
        result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                env={**os.environ, "KERAS_BACKEND": backend})
        assert result.returncode == 0, result.stderr[-2000:]
        assert result.stdout.strip().splitlines()[-1] == "false"


def test_cpu_bfloat16_detection_reads_the_flags(tmp_path):
    from ddsp_core import accelerators

    with_amx = tmp_path / "amx"
    with_amx.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 amx_bf16 amx_tile\n")
    without = tmp_path / "plain"
    without.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 avx512f\n")
    assert accelerators.cpu_has_bfloat16_units(str(with_amx))
    assert not accelerators.cpu_has_bfloat16_units(str(without))
    assert not accelerators.cpu_has_bfloat16_units(str(tmp_path / "missing"))
    # This machine: no GPU; the answer follows its own CPU flags.
    expected = "bfloat16" if accelerators.cpu_has_bfloat16_units() else "float32"
    assert accelerators.fast_precision() == expected
