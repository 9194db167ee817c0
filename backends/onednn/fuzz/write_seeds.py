"""write_seeds.py: real tbk_onednn payloads for the fuzz run's corpus: the small networks of
backends/onednn/models.py that use every operation kind (convolutions plain, strided, dilated,
grouped and depthwise, linear, batch norm, each eltwise, add/sub/mul/div with tensors, constants
and numbers, pooling, reshape, cat, softmax, permute, slice, layer_norm), lowered with
tbk.lower; each method's program written as one file in OUT_DIR, and each payload's
":checksums" part as one file in CHECKSUMS_DIR.

    python3 write_seeds.py OUT_DIR CHECKSUMS_DIR
    (PYTHONPATH: the tbk package, with tbk.onednn; TBK_ONEDNN_MODELS: models.py)
"""
import importlib.util
import os
import sys

import torch

import tbk
import tbk.onednn  # registers tbk_onednn
_spec = importlib.util.spec_from_file_location("models", os.environ["TBK_ONEDNN_MODELS"])
models = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(models)


def main():
    out, checksums_out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    os.makedirs(checksums_out, exist_ok=True)
    for name, (module, x) in models.operator_networks().items():
        lowered = tbk.lower(torch.jit.script(module), "tbk_onednn", {"forward": {}},
                            example_inputs=(x,))
        payload = lowered._c.getattr("__loweredModule__").getattr("__processed_module")
        for part, blob in payload.items():
            if part == ":checksums":
                path = os.path.join(checksums_out, f"{name}.txt")
            elif ":" in part:  # beside the programs: batch places, notes, the frozen module
                continue
            else:
                path = os.path.join(out, f"{name}_{part}.bin")
            with open(path, "wb") as f:
                f.write(blob.numpy().tobytes())
    print(f"write_seeds.py: {len(os.listdir(out))} programs in {out}, {len(os.listdir(checksums_out))} "
          f"checksums parts in {checksums_out}")

if __name__ == "__main__":
    main()
