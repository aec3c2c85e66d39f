"""int8 token-embedding tables: one scale per row (token), dequantized after the lookup.

The token-embedding table is most of a small encoder's file (mmBERT-small: 256k x 384 floats, 393 MB
of 437 MB after int8 MatMuls) but no part of its compute: storing it as int8 shrinks the artifact,
its load time, its sha256 check and the process's memory by almost 4x that table. Each row keeps its
own scale (max |row| / 127), so a rare token's small values are not crushed by another token's.

    Gather(table, ids)  ->  Cast(Gather(table_q, ids), float) * Gather(scales, ids)
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MIN_ROWS = 8192  # vocabulary tables; position and token-type tables are small and stay fp32


def quantize_embeddings(model: onnx.ModelProto) -> int:
    """Rewrite, in place, each Gather from a float table of at least MIN_ROWS rows that only Gathers read;
    returns how many tables were quantized."""
    graph = model.graph
    tables = {
        init.name: init
        for init in graph.initializer
        if len(init.dims) == 2 and init.dims[0] >= MIN_ROWS and init.data_type == TensorProto.FLOAT
    }
    for node in graph.node:
        axis = next((helper.get_attribute_value(a) for a in node.attribute if a.name == "axis"), 0)
        row_lookup = node.op_type == "Gather" and axis == 0
        for position, name in enumerate(node.input):
            if name in tables and not (row_lookup and position == 0):
                del tables[name]  # read as something other than a row lookup: leave it alone
    rewritten: list[onnx.NodeProto] = []
    for node in graph.node:
        if node.op_type != "Gather" or node.input[0] not in tables:
            rewritten.append(node)
            continue
        name, ids, out = node.input[0], node.input[1], node.output[0]
        rewritten += [
            helper.make_node("Gather", [f"{name}_q", ids], [f"{out}_q"], name=f"{node.name}_q", axis=0),
            helper.make_node("Cast", [f"{out}_q"], [f"{out}_f"], name=f"{node.name}_cast", to=TensorProto.FLOAT),
            helper.make_node("Gather", [f"{name}_scale", ids], [f"{out}_s"], name=f"{node.name}_scale", axis=0),
            helper.make_node("Mul", [f"{out}_f", f"{out}_s"], [out], name=f"{node.name}_dequantize"),
        ]
    kept = [init for init in graph.initializer if init.name not in tables]
    for name, init in tables.items():
        table = numpy_helper.to_array(init)
        scale = np.abs(table).max(axis=1, keepdims=True) / 127.0
        scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
        kept.append(numpy_helper.from_array(np.round(table / scale).astype(np.int8), f"{name}_q"))
        kept.append(numpy_helper.from_array(scale, f"{name}_scale"))
    del graph.node[:]
    graph.node.extend(rewritten)
    del graph.initializer[:]
    graph.initializer.extend(kept)
    return len(tables)
