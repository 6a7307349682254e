#!/usr/bin/env python3
"""Regenerate the app's PNG icons (stdlib only). The PNGs are committed; run this only to
change them: packaging/make-icons.py [APP_DIR] (default app/stackflow)."""
import os
import struct
import sys
import zlib

# A 7x7 glyph per icon, scaled into the middle of a coloured tile.
GLYPHS = {
    "S": ["0111110", "1100000", "1100000", "0111110", "0000011", "0000011", "1111110"],
    "!": ["0011100", "0011100", "0011100", "0011100", "0000000", "0011100", "0011100"],
    "#": ["0110110", "1111111", "0110110", "0110110", "0110110", "1111111", "0110110"],
    "A": ["0011100", "0110110", "1100011", "1111111", "1100011", "1100011", "1100011"],
}


def png(path, size, bg, glyph):
    fg = (255, 255, 255, 255)
    rows = GLYPHS[glyph]
    cell = max(1, (size * 6 // 10) // 7)
    off = (size - cell * 7) // 2
    radius = size // 6
    raw = bytearray()
    for y in range(size):
        raw.append(0)
        for x in range(size):
            # rounded corners: transparent outside the quarter circles
            cx = min(max(x, radius), size - 1 - radius)
            cy = min(max(y, radius), size - 1 - radius)
            if (x - cx) ** 2 + (y - cy) ** 2 > radius * radius:
                raw += bytes((0, 0, 0, 0))
                continue
            gx, gy = (x - off) // cell, (y - off) // cell
            on = 0 <= gx < 7 and 0 <= gy < 7 and x >= off and y >= off and rows[gy][gx] == "1"
            raw += bytes(fg if on else bg)

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", size, size, 8, 6, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(bytes(raw), 9)))
        f.write(chunk(b"IEND", b""))


def main():
    app = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", "app", "stackflow")
    blue, grey = (30, 120, 200, 255), (90, 100, 110, 255)
    os.makedirs(os.path.join(app, "static"), exist_ok=True)
    os.makedirs(os.path.join(app, "appserver", "static"), exist_ok=True)
    png(os.path.join(app, "static", "appIcon.png"), 36, blue, "S")
    png(os.path.join(app, "static", "appIcon_2x.png"), 72, blue, "S")
    png(os.path.join(app, "static", "appIconAlt.png"), 36, grey, "S")
    png(os.path.join(app, "static", "appIconAlt_2x.png"), 72, grey, "S")
    png(os.path.join(app, "appserver", "static", "stackflow_soar.png"), 48, (0, 140, 90, 255), "A")
    png(os.path.join(app, "appserver", "static", "stackflow_incident.png"), 48, (200, 70, 40, 255), "!")
    png(os.path.join(app, "appserver", "static", "stackflow_slack.png"), 48, (74, 21, 75, 255), "#")


if __name__ == "__main__":
    main()
