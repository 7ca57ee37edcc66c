import os

import keras

from fashion.training import device as devices


def test_this_machine_is_described_through_the_active_backend():
    found = devices.detect_device()
    assert found.backend == keras.backend.backend()
    # Tests never depend on a GPU: whatever this machine has, the record is complete.
    assert found.kind in ("cpu", "gpu", "tpu") and found.name
    assert found.cpu_cores == len(os.sched_getaffinity(0))
    if found.kind == "cpu":
        assert found.memory_gib is None and not found.is_accelerator
        assert found.bfloat16 == devices.cpu_has_bfloat16()


def test_a_saved_device_reads_as_one_line():
    gpu = devices.Device(backend="jax", kind="gpu", name="NVIDIA H200", memory_gib=139.8,
                         cpu_cores=16, bfloat16=True)
    assert devices.describe(gpu.to_dict()) == \
        "NVIDIA H200 (gpu, 140 GiB; 16 CPU cores; Keras on jax)"
    assert gpu.is_accelerator


def test_bfloat16_instructions_are_read_from_the_cpu_flags(monkeypatch):
    monkeypatch.setattr(devices, "_cpuinfo", lambda field: "fpu sse avx512f avx512_bf16")
    assert devices.cpu_has_bfloat16()
    monkeypatch.setattr(devices, "_cpuinfo", lambda field: "fpu sse avx2")
    assert not devices.cpu_has_bfloat16()
    monkeypatch.setattr(devices, "_cpuinfo", lambda field: None)  # no /proc/cpuinfo
    assert not devices.cpu_has_bfloat16()
