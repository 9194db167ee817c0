"""test_onednn_integrity.py: a damaged tbk_onednn payload is refused, never run. A property test:
a small network (convolution, ReLU, global average, linear) lowered to tbk_onednn with other shapes
allowed (so its payload keeps the frozen module too), saved as a TorchScript archive and, where
ExecuTorch imports, as a .pte; then, many times over, the saved file with its payload damaged
(one byte flipped, two bytes swapped, a part truncated, a part replaced by the same part of
another model of the same shape), loaded and called at the example's shape and at another one.
Each outcome is a refusal (an exception) or results bit-identical to the undamaged file's; a
wrong result fails the test. Prints the counts.

    python3 test_onednn_integrity.py [--mutations 10000] [--seed 1]

TorchScript: every byte of the archive's tensor records (data/N: the payload's parts and the
compile spec's tensors) and of its data.pkl (the payload's dict, its keys) may be hit. .pte: every
byte of the delegate's processed data; a part replaced is one record of the zip archive in it
(the payload as torch.save writes it). The whole processed data of another model is not damage
a checksum inside it can tell: that would be another model, whole. Truncation rewrites a record shorter (in a .pte, where the
processed data's size is recorded apart, its tail is zeroed instead).
"""
import argparse
import io
import os
import random
import re
import sys
import warnings
import zipfile

import torch

import tbk
import tbk.onednn  # noqa: F401  (registers tbk_onednn)

warnings.filterwarnings("ignore")


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))  # (no flatten: one delegate call in a .pte)


def net(seed):
    torch.manual_seed(seed)
    return Net().eval()


INPUTS = (torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(7)),  # the example's shape
          torch.randn(3, 3, 9, 9, generator=torch.Generator().manual_seed(8)))  # another one: read again


# ---- the TorchScript archive ----------------------------------------------------------------------

def archive(seed):
    lowered = tbk.lower(torch.jit.script(net(seed)), "tbk_onednn", {"forward": {}}, example_inputs=(INPUTS[0],))
    buffer = io.BytesIO()
    torch.jit.save(lowered, buffer)
    return buffer.getvalue()


def members(data):
    """name -> (offset of its bytes in the file, size): zip members stored as torch writes them."""
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for info in z.infolist():
            header = data[info.header_offset:info.header_offset + 30]
            name_length = int.from_bytes(header[26:28], "little")
            extra_length = int.from_bytes(header[28:30], "little")
            out[info.filename] = (info.header_offset + 30 + name_length + extra_length, info.file_size)
    return out


def rewritten(data, name, contents):
    """The archive with member `name` holding `contents` instead."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for info in source.infolist():
            target.writestr(info, contents if info.filename == name else source.read(info.filename))
    return out.getvalue()


def run_archive(data):
    module = torch.jit.load(io.BytesIO(data))
    with torch.no_grad():
        return [module(x) for x in INPUTS]


# ---- the .pte ------------------------------------------------------------------------------------

def pte(seed):
    """(.pte bytes, (offset, size) of the delegate's processed data in them)."""
    from executorch.exir import to_edge_transform_and_lower
    import tbk.executorch
    batch, side = torch.export.Dim("batch", min=1, max=4), torch.export.Dim("side", min=4, max=16)
    exported = torch.export.export(net(seed), (INPUTS[0],), dynamic_shapes=({0: batch, 2: side, 3: side},))
    edge = to_edge_transform_and_lower(exported, partitioner=[tbk.executorch.partitioner("tbk_onednn")])
    lowered = [m for _, m in edge.exported_program().graph_module.named_children() if hasattr(m, "processed_bytes")]
    assert len(lowered) == 1, f"expected one delegate call, got {len(lowered)}"
    data = edge.to_executorch().buffer
    processed = lowered[0].processed_bytes
    offset = data.find(processed)
    assert offset >= 0 and data.find(processed, offset + 1) < 0, "the processed data is not once in the .pte"
    return data, (offset, len(processed))


def run_pte(data):
    from executorch.runtime import Runtime
    method = Runtime.get().load_program(data).load_method("forward")
    return [method.execute([x])[0].clone() for x in INPUTS]


# ---- the property --------------------------------------------------------------------------------

def mutations(data, regions, other, rng):
    """Damaged copies of `data`, one at a time, forever: (kind, bytes). `regions`: (name, offset,
    size) of what may be damaged; `other(name, None)`: the file with that region taken from another
    model of the same shape (None where it has another size), `other(name, n)`: the file with it cut
    to its first n bytes."""
    weights = [size for _, _, size in regions]
    while True:
        name, offset, size = rng.choices(regions, weights)[0]
        kind = rng.choice(("flip", "swap", "truncate", "replace"))
        damaged = bytearray(data)
        if kind == "flip":
            damaged[offset + rng.randrange(size)] ^= rng.randrange(1, 256)
        elif kind == "swap":
            i, j = offset + rng.randrange(size), offset + rng.randrange(size)
            if damaged[i] == damaged[j]:
                continue  # no change: not a mutation
            damaged[i], damaged[j] = damaged[j], damaged[i]
        elif kind == "truncate":
            shorter = other(name, rng.randrange(size))
            if shorter is None:
                continue
            damaged = shorter
        else:
            replaced = other(name, None)
            if replaced is None or replaced == data:
                continue
            damaged = replaced
        yield kind, bytes(damaged)


def check(fmt, data, regions, other, run, count, rng):
    want = run(data)
    outcomes = {"refused": 0, "identical": 0, "wrong": 0}
    kinds = {}
    wrong = []
    for k, (kind, damaged) in enumerate(mutations(data, regions, other, rng)):
        if k == count:
            break
        kinds[kind] = kinds.get(kind, 0) + 1
        try:
            got = run(damaged)
        except Exception:  # noqa: BLE001  (a refusal: load or call raised)
            outcomes["refused"] += 1
            continue
        if all(g.shape == w.shape and torch.equal(g, w) for g, w in zip(got, want)):
            outcomes["identical"] += 1
        else:
            outcomes["wrong"] += 1
            wrong.append(kind)
    print(f"{fmt}: {count} damaged files ({', '.join(f'{v} {k}' for k, v in sorted(kinds.items()))}): "
          f"{outcomes['refused']} refused, {outcomes['identical']} bit-identical, {outcomes['wrong']} wrong", flush=True)
    return outcomes["wrong"] == 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mutations", type=int, default=10000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    ok = True

    data, another = archive(1), archive(2)
    places, elsewhere = members(data), members(another)
    regions = [(name, offset, size) for name, (offset, size) in sorted(places.items())
               if size and ("/data/" in name or name.endswith("/data.pkl"))]

    def other_archive(name, truncate_to):
        offset, size = places[name]
        if truncate_to is not None:
            return rewritten(data, name, data[offset:offset + truncate_to])
        if name not in elsewhere or elsewhere[name][1] != size:
            return None
        start = elsewhere[name][0]
        return rewritten(data, name, another[start:start + size])
    # the message names the part: the largest record (the frozen module or the program) damaged
    name, offset, size = max(regions, key=lambda r: r[2])
    damaged = bytearray(data)
    damaged[offset + size // 2] ^= 0x55
    try:
        run_archive(bytes(damaged))
        print(f"FAIL: {name} damaged in its middle, and the archive ran")
        ok = False
    except RuntimeError as e:
        named = re.search(r"tbk_onednn.*the payload's part '(forward|:frozen_module)' \((the program and weights of "
                          r"method forward|the frozen module kept to read methods at other shapes)\) is damaged: "
                          r"Byte\[\d+\] of CRC-32 [0-9a-f]{8}, lowering wrote Byte\[\d+\] of CRC-32 [0-9a-f]{8}", str(e), re.S)
        print(("" if named else "FAIL: ") + "one byte damaged in the middle of " + name + ": " +
              (str(e)[str(e).index("the payload's part"):][:300] if named else str(e).strip()[-400:]))
        ok &= named is not None
    ok &= check("TorchScript archive", data, regions, other_archive, run_archive, args.mutations, rng)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import executorch.runtime  # noqa: F401
            import tbk.executorch  # noqa: F401
    except ImportError:
        print(".pte: skipped (executorch does not import beside this torch, or tbk has no ExecuTorch side)")
    else:
        data, (offset, size) = pte(1)
        another, (other_offset, other_size) = pte(2)

        # the processed data holds the payload's parts as torch.save writes them: a zip archive
        # after tbk's header; a part replaced is one record of it, as in the TorchScript archive
        zip_start = data.find(b"PK\x03\x04", offset, offset + size)
        other_zip_start = another.find(b"PK\x03\x04", other_offset, other_offset + other_size)
        records = members(data[zip_start:offset + size])
        other_records = members(another[other_zip_start:other_offset + other_size])
        replaceable = sorted(n for n, (_, s) in records.items() if s and other_records.get(n, (0, -1))[1] == s)
        pick = random.Random(args.seed)

        def other_pte(name, truncate_to):
            if truncate_to is not None:  # the processed data shorter, the file's other bytes as they were
                return data[:offset + truncate_to] + bytes(size - truncate_to) + data[offset + size:]
            record = pick.choice(replaceable)
            start, length = records[record]
            other_start = other_records[record][0]
            return (data[:zip_start + start] + another[other_zip_start + other_start:other_zip_start + other_start + length]
                    + data[zip_start + start + length:])
        ok &= check(".pte", data, [("processed", offset, size)], other_pte, run_pte, args.mutations, rng)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
