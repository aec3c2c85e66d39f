"""ONNX Runtime sessions tuned for batch throughput, and the provider for each precision."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from scorer.errors import InputError

LOAD_ERRORS = tuple(
    getattr(ort.capi.onnxruntime_pybind11_state, name)
    for name in ("Fail", "InvalidArgument", "NoSuchFile", "NoModel", "InvalidProtobuf", "InvalidGraph")
)
CUDA = "CUDAExecutionProvider"
CPU = "CPUExecutionProvider"


def cuda_available() -> bool:
    return CUDA in ort.get_available_providers()


def provider_for(precision: str) -> str:
    """fp16 needs CUDA; fp32 uses CUDA when present; int8 always runs on the CPU provider."""
    if precision == "fp16":
        if not cuda_available():
            raise InputError(
                "precision fp16 needs CUDA (install the `gpu` extra on a GPU machine); use int8 or fp32 on CPU"
            )
        return CUDA
    if precision == "fp32" and cuda_available():
        return CUDA
    return CPU


def default_threads() -> int:
    """Physical parallelism available to this process (respects CPU affinity/cgroups)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def session_options(threads: int | None = None) -> ort.SessionOptions:
    """Throughput settings: all cores intra-op, one inter-op thread, sequential, all graph optimizations."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or default_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.enable_cpu_mem_arena = True
    options.enable_mem_pattern = True
    options.log_severity_level = 3
    return options


@dataclass
class OnnxModel:
    """An inference session over one variant, fed with padded int64 batches, returning float32 logits."""

    session: ort.InferenceSession
    provider: str
    input_names: list[str]

    @property
    def threads(self) -> int:
        return self.session.get_session_options().intra_op_num_threads

    @classmethod
    def load(cls, path: Path, provider: str = CPU, threads: int | None = None) -> OnnxModel:
        options = session_options(threads)
        providers = [provider] if provider == CPU else [provider, CPU]
        try:
            session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        except LOAD_ERRORS as exc:
            raise InputError(f"{path}: ONNX Runtime cannot load this model ({exc})") from None
        return cls(session, provider, [i.name for i in session.get_inputs()])

    def logits(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        """Run one batch; returns one float32 logit per row."""
        inputs = {name: feeds[name] for name in self.input_names}
        if self.provider == CUDA:
            return self._logits_iobinding(inputs)
        (out,) = self.session.run(None, inputs)
        return np.asarray(out, dtype=np.float32).reshape(len(feeds["input_ids"]), -1)[:, 0]

    def _logits_iobinding(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        binding = self.session.io_binding()
        for name, value in inputs.items():
            binding.bind_cpu_input(name, value)
        binding.bind_output(self.session.get_outputs()[0].name, "cuda")
        self.session.run_with_iobinding(binding)
        out = binding.copy_outputs_to_cpu()[0]
        return np.asarray(out, dtype=np.float32).reshape(len(inputs["input_ids"]), -1)[:, 0]
