#!/usr/bin/env python3
"""Convert the facenet-pytorch 2.6.0 MTCNN checkpoints (pnet.pt, rnet.pt, onet.pt) to one
safetensors file for actfer.

Usage:
    python mtcnn.py PNET.pt RNET.pt ONET.pt OUT.safetensors

Input
-----
``facenet_pytorch/data/{pnet,rnet,onet}.pt`` from the facenet_pytorch-2.6.0 wheel.  Each is
a *legacy* (pre-zip, torch < 1.6) ``torch.save`` file holding a ``collections.OrderedDict``
state_dict of float32 tensors.  torch is not needed: the file is read with a restricted
``pickle.Unpickler`` (only the handful of globals a state_dict needs can be resolved, so
nothing in the file can run code).  Legacy stream layout:

    pickle(magic number 0x1950a86a20f9469cfc6c)  pickle(protocol version 1001)
    pickle(sys info dict)  pickle(state_dict; tensors refer to storages by persistent id
    ('storage', <StorageType>, key, location, numel[, view_metadata]))
    pickle(list of storage keys)
    for each key in that list: <u64 little-endian element count> <count * itemsize raw bytes>

Output
------
One safetensors file, every tensor float32, C-contiguous, named
``<net>.<checkpoint name>`` with ``<net>`` in {pnet, rnet, onet}, e.g. ``pnet.conv1.weight``,
``rnet.dense4.weight``, ``onet.dense6_3.bias``.  PyTorch layouts are kept unchanged:

* Conv2d weight ``[out, in, kh, kw]`` (OIHW), bias ``[out]``
* Linear weight ``[out, in]``, bias ``[out]`` (y = x @ W.T + b)
* PReLU weight ``[channels]`` (one slope per channel / feature)

Layers (facenet_pytorch/models/mtcnn.py):

* pnet: conv1 3->10 k3, prelu1, maxpool 2/2 (ceil_mode), conv2 10->16 k3, prelu2,
  conv3 16->32 k3, prelu3, conv4_1 32->2 k1 (softmax over dim 1 = face prob),
  conv4_2 32->4 k1 (box regression).
* rnet (24x24 input): conv1 3->28 k3, prelu1, maxpool 3/2 ceil, conv2 28->48 k3, prelu2,
  maxpool 3/2 ceil, conv3 48->64 k2, prelu3 -> [N,64,3,3], dense4 576->128, prelu4,
  dense5_1 128->2 (softmax), dense5_2 128->4 (box).
* onet (48x48 input): conv1 3->32 k3, prelu1, maxpool 3/2 ceil, conv2 32->64 k3, prelu2,
  maxpool 3/2 ceil, conv3 64->64 k3, prelu3, maxpool 2/2 ceil, conv4 64->128 k2, prelu4
  -> [N,128,3,3], dense5 1152->256, prelu5, dense6_1 256->2 (softmax), dense6_2 256->4
  (box), dense6_3 256->10 (landmarks: 5 x then 5 y).
  All max pools use ceil_mode=True (no padding; a partial last window is kept).

Flatten order before the first dense layer (IMPORTANT for re-implementations)
------------------------------------------------------------------------------
facenet-pytorch does ``x = x.permute(0, 3, 2, 1).contiguous(); dense(x.view(N, -1))``, i.e.
the NCHW feature map is flattened in **(W, H, C) order, channel fastest**:

    flat[(w * H + h) * C + c] = x[n, c, h, w]

(rnet: C=64, H=W=3 -> 576 = dense4 input; onet: C=128, H=W=3 -> 1152 = dense5 input).  This
is the legacy Caffe layout (the original MTCNN weights were trained on transposed images).
In candle: ``x.permute((0, 3, 2, 1))?.contiguous()?.flatten_from(1)?`` then the Linear.
The weights are stored unpermuted, so the dense4 / dense5 weight columns follow that order.

Input normalisation used by facenet-pytorch (detect_face.py): RGB, NCHW float,
``(pixel - 127.5) * 0.0078125``; image pyramid / crops resized with area interpolation.

Metadata: ``format`` = ``actfer.mtcnn/1``, ``source`` = ``facenet-pytorch 2.6.0``.

The output is byte-deterministic: the file is written by this script (tensors sorted by
name, JSON header with sorted keys and no whitespace, no timestamps).  Only numpy and the
standard library are used (safetensors only to read the result back in tests).
"""

import collections
import os
import pickle
import struct
import sys

import numpy as np

from safetensors_f32 import write_safetensors

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001

# torch storage class name -> numpy dtype
STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}

NETS = ("pnet", "rnet", "onet")


class ConvertError(Exception):
    pass


class _StorageType:
    def __init__(self, name):
        self.name = name
        self.dtype = STORAGE_DTYPES[name]


class _Storage:
    """A storage referenced by the pickle; ``data`` is filled in once the raw bytes are read."""

    def __init__(self, key, stype, numel):
        self.key = key
        self.dtype = stype.dtype
        self.numel = numel
        self.data = None


class _StorageView:
    """Legacy view of a root storage: (root, element offset, element count)."""

    def __init__(self, root, offset, size):
        self.root = root
        self.offset = offset
        self.numel = size
        self.dtype = root.dtype


class _LazyTensor:
    def __init__(self, storage, offset, size, stride):
        self.storage = storage
        self.offset = int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def materialize(self):
        st = self.storage
        base_offset = 0
        if isinstance(st, _StorageView):
            base_offset = st.offset
            st = st.root
        if st.data is None:
            raise ConvertError(f"storage {st.key!r} has no data")
        flat = st.data
        off = base_offset + self.offset
        if not self.size:
            if off >= flat.size:
                raise ConvertError("scalar tensor outside its storage")
            return np.array(flat[off])
        # bounds check before building a strided view
        if any(s < 0 for s in self.stride) or any(s < 0 for s in self.size):
            raise ConvertError("negative size/stride")
        if min(self.size) > 0:
            last = off + sum((n - 1) * s for n, s in zip(self.size, self.stride))
            if off < 0 or last >= flat.size:
                raise ConvertError("tensor extends past the end of its storage")
        item = flat.dtype.itemsize
        view = np.lib.stride_tricks.as_strided(
            flat[off:] if off < flat.size else flat[:0],
            shape=self.size,
            strides=tuple(s * item for s in self.stride),
            writeable=False,
        )
        return np.array(view, copy=True, order="C")


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False,
                       backward_hooks=None, metadata=None):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_tensor(storage, storage_offset, size, stride):
    return _LazyTensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    return data


class _LegacyUnpickler(pickle.Unpickler):
    """Resolves only the globals a plain state_dict needs; storages become (key, type) references."""

    def __init__(self, f, storages):
        super().__init__(f)
        self._storages = storages

    def find_class(self, module, name):
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils":
            if name == "_rebuild_tensor_v2":
                return _rebuild_tensor_v2
            if name == "_rebuild_tensor":
                return _rebuild_tensor
            if name == "_rebuild_parameter":
                return _rebuild_parameter
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise ConvertError(f"unsupported pickle global {module}.{name}")

    def persistent_load(self, pid):
        if not isinstance(pid, tuple) or len(pid) < 5 or pid[0] != "storage":
            raise ConvertError(f"unsupported persistent id {pid!r}")
        _, stype, key, _location, numel = pid[:5]
        view_metadata = pid[5] if len(pid) > 5 else None
        if not isinstance(stype, _StorageType):
            raise ConvertError(f"unsupported storage type {stype!r}")
        key = str(key)
        root = self._storages.get(key)
        if root is None:
            root = _Storage(key, stype, int(numel))
            self._storages[key] = root
        if view_metadata is not None:
            _view_key, offset, size = view_metadata
            return _StorageView(root, int(offset), int(size))
        return root


def _restricted_load(f):
    """Plain pickle load for the header pickles (only builtin types allowed)."""

    class _Plain(pickle.Unpickler):
        def find_class(self, module, name):
            raise ConvertError(f"unexpected global {module}.{name} in header")

    return _Plain(f).load()


def load_legacy_state_dict(path):
    """Read a legacy torch.save file into an OrderedDict name -> numpy array."""
    with open(path, "rb") as f:
        magic = _restricted_load(f)
        if magic != LEGACY_MAGIC:
            raise ConvertError("not a legacy torch.save file (bad magic number)")
        proto = _restricted_load(f)
        if proto != LEGACY_PROTOCOL:
            raise ConvertError(f"unsupported torch legacy protocol {proto!r}")
        sys_info = _restricted_load(f)
        if isinstance(sys_info, dict) and sys_info.get("little_endian") is False:
            raise ConvertError("big-endian checkpoints are not supported")
        storages = {}
        obj = _LegacyUnpickler(f, storages).load()
        keys = _restricted_load(f)
        if not isinstance(keys, list):
            raise ConvertError("storage key list missing")
        for key in keys:
            key = str(key)
            st = storages.get(key)
            if st is None:
                raise ConvertError(f"storage key {key!r} not referenced by the state_dict")
            head = f.read(8)
            if len(head) != 8:
                raise ConvertError("truncated file (storage size)")
            (count,) = struct.unpack("<q", head)
            if count != st.numel:
                raise ConvertError(f"storage {key!r}: {count} elements, expected {st.numel}")
            nbytes = count * st.dtype.itemsize
            raw = f.read(nbytes)
            if len(raw) != nbytes:
                raise ConvertError("truncated file (storage data)")
            st.data = np.frombuffer(raw, dtype=st.dtype)
        if f.read(1):
            raise ConvertError("trailing bytes after the last storage")

    if not isinstance(obj, dict):
        raise ConvertError(f"expected a state_dict, got {type(obj).__name__}")
    out = collections.OrderedDict()
    for name, t in obj.items():
        if not isinstance(t, _LazyTensor):
            raise ConvertError(f"entry {name!r} is not a tensor")
        arr = t.materialize()
        if arr.dtype.kind != "f":
            raise ConvertError(f"tensor {name!r} has non-float dtype {arr.dtype}")
        out[str(name)] = np.ascontiguousarray(arr.astype("<f4", copy=False))
    return out



def main(argv):
    if len(argv) != 5:
        sys.stderr.write("usage: python mtcnn.py PNET.pt RNET.pt ONET.pt OUT.safetensors\n")
        return 2
    inputs = dict(zip(NETS, argv[1:4]))
    out_path = argv[4]
    for net, path in inputs.items():
        if not os.path.isfile(path):
            sys.stderr.write(f"mtcnn.py: error: {net} checkpoint not found: {path}\n")
            return 1
    tensors = {}
    for net, path in inputs.items():
        try:
            sd = load_legacy_state_dict(path)
        except Exception as e:  # any failure here means a corrupt / unexpected file
            sys.stderr.write(f"mtcnn.py: error: cannot read {net} checkpoint {path}: {e}\n")
            return 1
        if not sd:
            sys.stderr.write(f"mtcnn.py: error: {net} checkpoint {path} holds no tensors\n")
            return 1
        for name, arr in sd.items():
            tensors[f"{net}.{name}"] = arr
            print(f"{net}.{name:<16} {str(list(arr.shape)):<18} {arr.dtype}")
    metadata = {"format": "actfer.mtcnn/1", "source": "facenet-pytorch 2.6.0"}
    try:
        write_safetensors(out_path, tensors, metadata)
    except OSError as e:
        sys.stderr.write(f"mtcnn.py: error: cannot write {out_path}: {e}\n")
        return 1
    print(f"wrote {len(tensors)} tensors to {out_path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
