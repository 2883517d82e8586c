from __future__ import annotations

import pytest

from edgeprune.errors import RuntimeUnavailableError


def test_missing_tensorrt_is_a_clear_error():
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        from edgeprune.latency.tensorrt_profiler import TensorRTTimer

        with pytest.raises(RuntimeUnavailableError, match="TensorRT is not installed"):
            TensorRTTimer("fp16")
    else:
        pytest.skip("tensorrt is installed here")


@pytest.mark.gpu
def test_tensorrt_times_a_kernel_pair():
    pytest.importorskip("tensorrt")
    from edgeprune.latency.kernels import KernelKey
    from edgeprune.latency.profiler import measure_kernel
    from edgeprune.latency.tensorrt_profiler import TensorRTTimer

    timer = TensorRTTimer("fp16", warmup=5, runs=20)
    small = measure_kernel(KernelKey("cifar_block", 32, 32, 16, 16, 16, precision="fp16"), timer)
    big = measure_kernel(KernelKey("cifar_block", 32, 32, 64, 256, 64, precision="fp16"), timer)
    assert small[3] == 20 and big[0] > small[0]
    assert timer.info()["runtime"] == "tensorrt"
