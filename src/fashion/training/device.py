"""What this run trains on: the accelerator the active Keras backend sees, else the CPU."""

from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass

import keras


@dataclass(frozen=True)
class Device:
    """The device a run trained on, as saved in `config.json` and shown in the report."""

    backend: str  # Keras's backend: tensorflow, jax or torch
    kind: str  # "gpu" or "cpu" (a TPU is "tpu")
    name: str
    memory_gib: float | None  # the accelerator's memory; None for the CPU or where unknown
    cpu_cores: int
    # Computes in bfloat16 natively: a CPU with AVX-512 BF16 or AMX, an NVIDIA GPU from Ampere
    # (compute capability 8.0) on; older GPUs emulate it, slowly.
    bfloat16: bool

    @property
    def is_accelerator(self) -> bool:
        return self.kind != "cpu"

    def to_dict(self) -> dict:
        return asdict(self)


def describe(device: dict) -> str:
    """One line for a device as `Device.to_dict` saved it."""
    memory = f", {device['memory_gib']:.0f} GiB" if device.get("memory_gib") else ""
    return (f"{device['name']} ({device['kind']}{memory}; {device['cpu_cores']} CPU cores; "
            f"Keras on {device['backend']})")


def detect_device(backend: str | None = None) -> Device:
    """Ask the active backend for its first accelerator; fall back to describing the CPU."""
    backend = backend or keras.backend.backend()
    found = {"jax": _jax_accelerator, "tensorflow": _tensorflow_accelerator,
             "torch": _torch_accelerator}.get(backend, lambda: None)()
    kind, name, memory, bfloat16 = found or ("cpu", cpu_name(), None, cpu_has_bfloat16())
    return Device(backend=backend, kind=kind, name=name, memory_gib=memory,
                  cpu_cores=cpu_cores(), bfloat16=bfloat16)


def cpu_cores() -> int:
    """The cores this process may run on (a container's share, not the host's)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def cpu_name() -> str:
    return _cpuinfo("model name") or platform.processor() or platform.machine() or "CPU"


def cpu_has_bfloat16() -> bool:
    """Whether the CPU has bfloat16 instructions (Linux's flags; False where unknown)."""
    flags = set((_cpuinfo("flags") or "").split())
    return bool(flags & {"avx512_bf16", "amx_bf16"})


def _cpuinfo(field: str) -> str | None:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith(field):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _jax_accelerator():
    import jax

    device = jax.devices()[0]
    if device.platform == "cpu":
        return None
    stats = device.memory_stats() or {}
    memory = stats.get("bytes_limit")
    capability = getattr(device, "compute_capability", None)  # CUDA only, as "9.0"
    bfloat16 = device.platform == "tpu" or (capability is not None and float(capability) >= 8)
    return device.platform, device.device_kind, memory and round(memory / 2**30, 1), bfloat16


def _tensorflow_accelerator():
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    details = tf.config.experimental.get_device_details(gpus[0])
    capability = details.get("compute_capability", (0, 0))
    return "gpu", details.get("device_name", gpus[0].name), None, capability >= (8, 0)


def _torch_accelerator():
    import torch

    if not torch.cuda.is_available():
        return None
    properties = torch.cuda.get_device_properties(0)
    return ("gpu", properties.name, round(properties.total_memory / 2**30, 1),
            properties.major >= 8)
