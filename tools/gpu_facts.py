"""Which MXNet 1.9.1 GPU wheel runs on a machine: what the NVIDIA driver and the GPU report,
and a table of facts about the wheels (no MXNet needed: the GPU check runs this first).

The rule: the newest ``mxnet-cu1xx==1.9.1`` whose CUDA version the driver supports (a driver
runs CUDA up to the version ``nvidia-smi`` reports) and that carries kernels for the GPU. The
builds carry machine code (cubins) for a few architectures and no PTX, so a GPU runs a build
only if it has a cubin of the same major version and a lower or equal minor version (CUDA's
binary compatibility rule: code for X.y runs on X.z with z >= y). Hence a Hopper card (9.0)
runs no MXNet 1.9.1 build at all, while Ada (8.9) runs the 8.6 code of the CUDA 11 builds.

Sources, per row of :data:`WHEELS` (apache/mxnet): the CUDA architectures are
``MXNET_CUDA_ARCH`` in ``config/distribution/linux_cu1xx.cmake`` (tag 1.9.1 for cu101, cu102,
cu110, cu112; branch v1.9.x, from which the cu111 and cu113-cu117 wheels of August 2022 were
built, for the others), none with ``+PTX``; cuDNN is ``LIBCUDNN_VERSION`` in
``tools/setup_gpu_build_tools.sh`` (v1.9.x). Read from the ``mxnet-cu117==1.9.1`` wheel itself:
``libmxnet.so``'s ``.nv_fatbin`` holds cubins for sm_50, 60, 70, 80 and 86 and no PTX, and it
needs cuDNN 8, NCCL 2 and the CUDA 11 runtime libraries (``readelf -d``), which it does not
ship (``import mxnet`` fails with ``libcudnn.so.8: cannot open shared object file`` without
them, apache/mxnet#20279): for CUDA 11 they come from NVIDIA's pip packages
(:data:`CUDA11_RUNTIME`, CUDA 11.7, the oldest CUDA 11 release published there).
"""
import re
from dataclasses import dataclass

__all__ = ["Wheel", "WHEELS", "CUDA11_RUNTIME", "NoWheel", "WheelChoice", "choose_wheel",
           "parse_cuda_version", "parse_gpu_query", "GPU_QUERY", "cuda_driver_query"]

_TAG = "apache/mxnet 1.9.1 config/distribution/linux_{}.cmake"
_BRANCH = "apache/mxnet v1.9.x config/distribution/linux_{}.cmake"
_CU10 = (30, 50, 60, 70, 75)
_CU11 = (50, 60, 70, 80)
_CU11_AMPERE = (50, 60, 70, 80, 86)


@dataclass(frozen=True)
class Wheel:
    """One ``mxnet-cu1xx==1.9.1`` wheel on the package index."""

    name: str
    cuda: tuple           # (major, minor) of the CUDA it was built with
    cudnn: str
    cubins: tuple         # compute capabilities with machine code, e.g. 86 = sm_86
    source: str

    def runs_on(self, capability):
        """Whether it has kernels for a GPU of ``capability`` ((major, minor))."""
        major, minor = capability
        return any(c // 10 == major and c % 10 <= minor for c in self.cubins)


WHEELS = (
    Wheel("mxnet-cu101", (10, 1), "7.6.5.32", _CU10, _TAG.format("cu101")),
    Wheel("mxnet-cu102", (10, 2), "7.6.5.33", _CU10, _TAG.format("cu102")),
    Wheel("mxnet-cu110", (11, 0), "8.0.5.39", _CU11, _TAG.format("cu110")),
    Wheel("mxnet-cu111", (11, 1), "8.0.5.39", _CU11_AMPERE, _BRANCH.format("cu111")),
    Wheel("mxnet-cu112", (11, 2), "8.1.1.33", _CU11_AMPERE, _TAG.format("cu112")),
    Wheel("mxnet-cu113", (11, 3), "8.2.1.32", _CU11_AMPERE, _BRANCH.format("cu113")),
    Wheel("mxnet-cu114", (11, 4), "8.2.4.15", _CU11_AMPERE, _BRANCH.format("cu114")),
    Wheel("mxnet-cu115", (11, 5), "8.3.3.40", _CU11_AMPERE, _BRANCH.format("cu115")),
    Wheel("mxnet-cu116", (11, 6), "8.4.1.50", _CU11_AMPERE, _BRANCH.format("cu116")),
    Wheel("mxnet-cu117", (11, 7), "8.5.0.96", _CU11_AMPERE,
          _BRANCH.format("cu117") + "; and read from the wheel's libmxnet.so"),
)

# The CUDA 11 libraries libmxnet.so needs (readelf -d of mxnet-cu117 1.9.1), as NVIDIA's pip
# packages of CUDA 11.7 and the cuDNN the cu117 build used. cuDNN 8 and the CUDA 11 runtime
# keep their ABI across minor versions, so the older CUDA 11 builds load them too.
CUDA11_RUNTIME = (
    "nvidia-cuda-runtime-cu11==11.7.99",      # libcudart.so.11.0
    "nvidia-cublas-cu11==11.10.3.66",         # libcublas.so.11
    "nvidia-cufft-cu11==10.7.2.91",           # libcufft.so.10
    "nvidia-curand-cu11==10.2.10.91",         # libcurand.so.10
    "nvidia-cusolver-cu11==11.4.0.1",         # libcusolver.so.11
    "nvidia-cusparse-cu11==11.7.4.91",        # libcusparse.so.11
    "nvidia-cuda-nvrtc-cu11==11.7.99",        # libnvrtc.so.11.2
    "nvidia-nvtx-cu11==11.7.91",              # libnvToolsExt.so.1
    "nvidia-cudnn-cu11==8.5.0.96",            # libcudnn.so.8
    "nvidia-nccl-cu11==2.14.3",               # libnccl.so.2
)
_NVRTC_CUDA = (11, 7)
_FAMILIES = {3: "Kepler", 5: "Maxwell", 6: "Pascal", 7: "Volta/Turing", 8: "Ampere/Ada",
             9: "Hopper", 10: "Blackwell", 12: "Blackwell"}


class NoWheel(Exception):
    """No MXNet 1.9.1 wheel runs here; the message is the one sentence to print."""


@dataclass(frozen=True)
class WheelChoice:
    """The wheel to install, the pip packages it needs beside it, and the environment."""

    wheel: Wheel
    packages: tuple        # pip requirements, the wheel first
    env: dict              # extra environment variables for every MXNet process
    notes: tuple           # sentences for the report
    system_libraries: tuple = ()   # sonames that must already be on the system (CUDA 10)


def _arch(capability):
    return f"sm_{capability[0]}{capability[1]}"


def choose_wheel(driver_cuda, capability):
    """The :class:`WheelChoice` for a driver supporting CUDA ``driver_cuda`` ((major, minor),
    from ``nvidia-smi``) and a GPU of compute ``capability`` ((major, minor)).

    Raises
    ------
    NoWheel
        With one sentence: the driver is too old, or no build has kernels for the GPU.
    """
    supported = [w for w in WHEELS if w.cuda <= tuple(driver_cuda)]
    if not supported:
        raise NoWheel(f"the NVIDIA driver supports CUDA {driver_cuda[0]}.{driver_cuda[1]}, "
                      "older than the oldest MXNet 1.9.1 GPU build (CUDA 10.1); update the "
                      "driver.")
    runnable = [w for w in supported if w.runs_on(capability)]
    if not runnable:
        family = _FAMILIES.get(capability[0], "this")
        newest = supported[-1]
        archs = ", ".join(f"sm_{c}" for c in newest.cubins)
        raise NoWheel(f"no MXNet 1.9.1 build has kernels for this {family} GPU (compute "
                      f"capability {capability[0]}.{capability[1]}, {_arch(capability)}): "
                      f"{newest.name} carries {archs} and no PTX to compile for newer GPUs, "
                      "so the GPU path of this project cannot run on it.")
    wheel = runnable[-1]
    notes = [f"{wheel.name}: built with CUDA {wheel.cuda[0]}.{wheel.cuda[1]} and cuDNN "
             f"{wheel.cudnn}, kernels for {', '.join(f'sm_{c}' for c in wheel.cubins)}"]
    if not any(c == capability[0] * 10 + capability[1] for c in wheel.cubins):
        notes.append(f"this GPU ({_arch(capability)}) runs the build's sm_"
                     f"{max(c for c in wheel.cubins if c // 10 == capability[0])} code "
                     "(CUDA binary compatibility within a major version)")
    if wheel.cuda[0] == 10:
        libs = (f"libcudart.so.{wheel.cuda[0]}.{wheel.cuda[1]}", "libcudnn.so.7")
        return WheelChoice(wheel, (f"{wheel.name}==1.9.1",), {}, tuple(notes), libs)
    env = {}
    if tuple(driver_cuda) < _NVRTC_CUDA:
        # NVRTC 11.7 (the pip package) emits PTX that an older driver cannot compile: turn
        # off MXNet's run-time fusion of pointwise operators, its only use of NVRTC here.
        env["MXNET_USE_FUSION"] = "0"
        notes.append("MXNET_USE_FUSION=0: the driver is older than the CUDA 11.7 NVRTC")
    return WheelChoice(wheel, (f"{wheel.name}==1.9.1",) + CUDA11_RUNTIME, env, tuple(notes))


# What the GPU check asks nvidia-smi (one CSV line per GPU).
GPU_QUERY = ("index", "name", "driver_version", "compute_cap", "memory.total")


def parse_gpu_query(text):
    """GPUs from ``nvidia-smi --query-gpu=<GPU_QUERY> --format=csv,noheader,nounits``:
    a list of dicts; ``compute_cap`` is ``(major, minor)`` or None when not reported."""
    gpus = []
    for line in text.strip().splitlines():
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != len(GPU_QUERY) or not cells[0].isdigit():
            continue
        row = dict(zip(GPU_QUERY, cells))
        match = re.fullmatch(r"(\d+)\.(\d+)", row["compute_cap"])
        row["compute_cap"] = (int(match[1]), int(match[2])) if match else None
        row["index"] = int(row["index"])
        gpus.append(row)
    return gpus


def parse_cuda_version(text):
    """``(major, minor)`` from the ``CUDA Version: 12.2`` of ``nvidia-smi``'s banner, or None."""
    match = re.search(r"CUDA Version\s*:\s*(\d+)\.(\d+)", text)
    return (int(match[1]), int(match[2])) if match else None


def cuda_driver_query(library="libcuda.so.1"):
    """``(driver CUDA version, [compute capability per GPU])`` from the CUDA driver API, for
    drivers whose nvidia-smi has no ``compute_cap`` field; None without a usable driver."""
    import ctypes
    try:
        cuda = ctypes.CDLL(library)
    except OSError:
        return None
    if cuda.cuInit(0) != 0:
        return None
    version, count = ctypes.c_int(), ctypes.c_int()
    cuda.cuDriverGetVersion(ctypes.byref(version))
    cuda.cuDeviceGetCount(ctypes.byref(count))
    capabilities = []
    for i in range(count.value):
        device, major, minor = ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
        cuda.cuDeviceGet(ctypes.byref(device), i)
        # CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR = 75, _MINOR = 76 (cuda.h)
        cuda.cuDeviceGetAttribute(ctypes.byref(major), 75, device)
        cuda.cuDeviceGetAttribute(ctypes.byref(minor), 76, device)
        capabilities.append((major.value, minor.value))
    return (version.value // 1000, version.value % 1000 // 10), capabilities
