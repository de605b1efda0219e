#!/usr/bin/env python3
"""Writes the hostile-input corpus and cases.tsv, which tests/cli/test_hostile.sh runs: small
model files, images and configs that are truncated, oversized, malformed or of refused shapes,
each with every command that reads such a file and the exit code README's rule gives (1 for a
model that does not load, 2 for a bad input image or config). Run from this folder; the files
are committed, this script says how they were made."""
import json
import struct
import zlib


def safetensors(header, data=b''):
    h = json.dumps(header).encode()
    h += b' ' * (-len(h) % 8)
    return struct.pack('<Q', len(h)) + h + data


def png(width, height, rows=None, ihdr_only=False):
    def chunk(kind, body):
        return struct.pack('>I', len(body)) + kind + body + struct.pack('>I', zlib.crc32(kind + body))
    out = b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0))
    if ihdr_only:
        return out + chunk(b'IEND', b'')
    raw = rows if rows is not None else b''.join(b'\x00' + bytes(3 * width) for _ in range(height))
    return out + chunk(b'IDAT', zlib.compress(raw, 9)) + chunk(b'IEND', b'')


f32 = struct.pack('<4f', 1, 2, 3, 4)
files = {
    # Model files: every command that loads one exits 1.
    'empty.safetensors': b'',
    'short.safetensors': b'\x08\x00\x00',
    'garbage.safetensors': b'this is not a model at all\n',
    'huge-header.safetensors': struct.pack('<Q', 1 << 62) + b'{}',
    'truncated-header.safetensors': struct.pack('<Q', 1000) + b'{"x": {"dt',
    'deep.safetensors': safetensors([[[[[[[[[[[]]]]]]]]]]]),
    'bad-dtype.safetensors': safetensors({'x': {'dtype': 'Q7', 'shape': [4], 'data_offsets': [0, 16]}}, f32),
    'overlap.safetensors': safetensors({'a': {'dtype': 'F32', 'shape': [2], 'data_offsets': [0, 8]},
                                        'b': {'dtype': 'F32', 'shape': [2], 'data_offsets': [4, 12]}}, f32[:12]),
    'trailing.safetensors': safetensors({'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, f32 + b'x' * 64),
    'truncated-data.safetensors': safetensors({'a': {'dtype': 'F32', 'shape': [400], 'data_offsets': [0, 1600]}}, f32),
    'no-config.safetensors': safetensors({'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, f32),
    'future-version.safetensors': safetensors(
        {'__metadata__': {'igan.format_version': '99', 'igan.config': '{}'},
         'a': {'dtype': 'F32', 'shape': [4], 'data_offsets': [0, 16]}}, f32),
    # Input images: every command that reads one exits 2.
    'empty.png': b'',
    'text.png': b'not an image\n',
    'truncated.png': png(64, 64)[:60],
    'bomb.png': png(100000, 100000, ihdr_only=True),
    'unknown-critical-chunk.png': png(16, 16).replace(b'IDAT', b'IDAX'),
    'sliver-wide.png': png(400, 1),
    'sliver-tall.png': png(1, 400),
    'truncated.jpg': b'\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xdb',
    # Configs: a usage error (2).
    'not-json.json': b'root:x:0:0:root:/root:/bin/bash\n',
    'wrong-keys.json': b'{"generator": {"no_such_key": 1}}\n',
}
for name, data in files.items():
    with open(name, 'wb') as f:
        f.write(data)

# Commands are test_hostile.sh's names for "a command reading FILE as ...".
MODEL = ['inspect', 'generate-model', 'serve-model']
IMAGE = ['outpaint-input', 'outpaint-mask', 'inbetween-left', 'eval-fake']
SHAPE = ['outpaint-input', 'inbetween-left']  # valid images that inversion refuses
CONFIG = ['generate-config', 'init-config']
with open('cases.tsv', 'w') as f:
    f.write('command\tfile\texit\n')
    for name in files:
        if name.endswith('.safetensors'):
            cases = [(c, 1) for c in MODEL]
        elif name.startswith('sliver'):
            cases = [(c, 2) for c in SHAPE]
        elif name.endswith(('.png', '.jpg')):
            cases = [(c, 2) for c in IMAGE]
        else:
            cases = [(c, 2) for c in CONFIG]
        for command, code in cases:
            f.write(f'{command}\t{name}\t{code}\n')
