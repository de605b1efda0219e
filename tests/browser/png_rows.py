"""Decodes 8-bit RGB or RGBA PNGs (not interlaced) with the standard library, for the browser
tests: read(path) -> (width, height, bytes per pixel, list of rows as bytearrays)."""
import struct
import zlib


def _unfilter(kind, line, prev, bpp):
    for i in range(len(line)):
        left = line[i - bpp] if i >= bpp else 0
        up, up_left = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if kind == 1:
            pred = left
        elif kind == 2:
            pred = up
        elif kind == 3:
            pred = (left + up) // 2
        elif kind == 4:
            p = left + up - up_left
            da, db, dc = abs(p - left), abs(p - up), abs(p - up_left)
            pred = left if da <= db and da <= dc else up if db <= dc else up_left
        else:
            pred = 0
        line[i] = (line[i] + pred) & 255


def read(path):
    data = open(path, 'rb').read()
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError(path + ': not a PNG')
    pos, compressed = 8, b''
    while pos < len(data):
        size, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + size]
        if kind == b'IHDR':
            width, height, depth, colour, _, _, interlace = struct.unpack('>IIBBBBB', body)
            if depth != 8 or colour not in (2, 6) or interlace:
                raise ValueError(path + ': not 8-bit RGB/RGBA')
            bpp = 3 if colour == 2 else 4
        elif kind == b'IDAT':
            compressed += body
        pos += 12 + size
    raw, stride = zlib.decompress(compressed), width * bpp
    rows, prev = [], bytearray(stride)
    for y in range(height):
        at = y * (stride + 1)
        line = bytearray(raw[at + 1:at + 1 + stride])
        _unfilter(raw[at], line, prev, bpp)
        rows.append(line)
        prev = line
    return width, height, bpp, rows
