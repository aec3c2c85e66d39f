"""ONNX Runtime sessions tuned for batch throughput, and the provider for each precision.

On CUDA a session gets a bounded memory arena (`cuda_provider_options`) and is fed through IOBinding:
each batch's inputs are copied to the GPU once as OrtValues, the logits stay on the GPU until the run
ends and come back in one copy. The CPU path is plain `session.run`.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from scorer.errors import InputError, ScorerError
from scorer.variants import VARIANTS

LOAD_ERRORS = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf", "InvalidGraph")
)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"
# The arena grows by what each batch asks for (no power-of-two rounding) up to this bound. A 65536-token
# fp16 batch of mmBERT-small needs well under 2 GiB of activations; 8 GiB leaves room for long pairs
# (max_length 256) while sharing the GPU. `--gpu-memory` changes it.
DEFAULT_GPU_MEM_LIMIT = 8 << 30


def cuda_available() -> bool:
    """ONNX Runtime was built with CUDA and this process can see an NVIDIA device.

    `onnxruntime-gpu` lists the CUDA provider on machines without a GPU too; a session asked for it
    there falls back to the CPU, so the device files and CUDA_VISIBLE_DEVICES are checked as well.
    """
    if CUDA not in ort.get_available_providers():
        return False
    if os.environ.get("CUDA_VISIBLE_DEVICES", "0").strip() in ("", "-1"):
        return False
    return any(Path("/dev").glob("nvidia[0-9]*"))


def gpu_name(device_id: int = 0) -> str | None:
    """The model of the CUDA device this process uses (e.g. `NVIDIA H100 80GB HBM3`), from nvidia-smi;
    None where it cannot be asked. CUDA_VISIBLE_DEVICES renumbers devices, nvidia-smi does not."""
    visible = [d.strip() for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    device = visible[device_id] if device_id < len(visible) else str(device_id)
    try:
        out = subprocess.run(
            ["nvidia-smi", "-i", device, "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    return out.strip().splitlines()[0] if out.strip() else None


def provider_for(precision: str) -> str:
    """The provider a variant runs on (`scorer.variants`): CUDA for one that needs it (fp16) or can use it
    (fp32) where there is a GPU; the CPU for the others (int8 always runs on the CPU provider)."""
    variant = VARIANTS[precision]
    if variant.needs == "cuda" and not cuda_available():
        raise InputError(
            f"precision {precision} needs CUDA (install the `gpu` extra on a GPU machine); use int8 or fp32 on CPU"
        )
    return CUDA if variant.gpu and cuda_available() else CPU


def default_threads() -> int:
    """Physical parallelism available to this process (respects CPU affinity/cgroups)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Throughput settings: all cores intra-op, one inter-op thread, sequential, all graph optimizations, and
    worker threads that sleep instead of spinning between ops. Spinning only pays where a core is free: MiniLM
    int8 on 2 AMD EPYC cores, 4 alternated rounds, measured 318 (off) vs 303 (on) pairs/s median on a quiet
    machine, and 105-114 vs 75-96 pairs/s while other jobs loaded the cores (nightly hosts are shared)."""
    options = ort.SessionOptions()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = True
    options.log_severity_level = 3
    return options


def cuda_provider_options(gpu_mem_limit: int = DEFAULT_GPU_MEM_LIMIT, device_id: int = 0) -> dict[str, str]:
    """CUDA provider settings: a bounded arena grown by what is asked (kSameAsRequested, not the default
    next power of two, which can double a long batch's footprint), and no TF32, so that the fp32 parts
    (the fp32 variant; RoPE and the head of the fp16 one) compute in fp32 as gated.

    >>> cuda_provider_options(1 << 30)["gpu_mem_limit"]
    '1073741824'
    """
    return {
        "device_id": str(device_id),
        "gpu_mem_limit": str(int(gpu_mem_limit)),
        "arena_extend_strategy": "kSameAsRequested",
        "use_tf32": "0",
    }


def providers(provider: str, gpu_mem_limit: int = DEFAULT_GPU_MEM_LIMIT) -> list[str | tuple[str, dict[str, str]]]:
    """The `providers` argument of an InferenceSession for `provider` (CUDA with its options, then CPU for
    the few ops CUDA lacks)."""
    if provider == CUDA:
        return [(CUDA, cuda_provider_options(gpu_mem_limit)), CPU]
    return [provider] if provider == CPU else [provider, CPU]


@dataclass
class OnnxModel:
    """An inference session over one variant, fed with padded int64 batches, returning float32 logits.

    `device`: where IOBinding places inputs and outputs (`cuda` on the CUDA provider); None runs the
    plain `session.run` path.
    """

    session: ort.InferenceSession
    provider: str
    input_names: list[str]
    device: str | None = None

    @property
    def threads(self) -> int:
        return self.session.get_session_options().intra_op_num_threads

    @classmethod
    def load(
        cls, path: Path, provider: str = CPU, threads: int | None = None, gpu_mem_limit: int = DEFAULT_GPU_MEM_LIMIT
    ) -> OnnxModel:
        options = session_options(threads)
        try:
            session = ort.InferenceSession(
                str(path), sess_options=options, providers=providers(provider, gpu_mem_limit)
            )
        except LOAD_ERRORS as exc:
            raise InputError(f"{path}: ONNX Runtime cannot load this model ({exc})") from None
        if session.get_providers()[0] != provider:  # ONNX Runtime falls back to the CPU with a log line only
            raise ScorerError(
                f"{path}: ONNX Runtime could not start {provider} (it offers {', '.join(session.get_providers())}): "
                "check the NVIDIA driver and the CUDA/cuDNN libraries onnxruntime-gpu needs"
            )
        device = "cuda" if provider == CUDA else None
        return cls(session, provider, [i.name for i in session.get_inputs()], device)

    def run(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one batch; returns the model's first output as float32 (a cross-encoder's logits, an embedder's
        token states). Feeds the model does not take are left out (not every encoder has `token_type_ids`)."""
        inputs = {name: feeds[name] for name in self.input_names}
        if self.device is not None:
            out: Any = self._bound_run(inputs, self.device)
        else:
            out = self.session.run(None, inputs)[0]
        return np.asarray(out, dtype=np.float32)

    def logits(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one batch; returns one float32 logit per row."""
        return self.run(feeds).reshape(len(feeds["input_ids"]), -1)[:, 0]

    def _bound_run(self, inputs: dict[str, np.ndarray], device: str) -> np.ndarray:
        """IOBinding: inputs copied to `device` as OrtValues, the output allocated there and copied back once."""
        binding = self.session.io_binding()
        for name, value in inputs.items():
            binding.bind_ortvalue_input(name, ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(value), device, 0))
        binding.bind_output(self.session.get_outputs()[0].name, device, 0)
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]
