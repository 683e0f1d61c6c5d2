"""Writes small index-mask PNGs with Pillow (an independent PNG encoder) for the decoder tests.

Run: /work/main/.venv-ref/bin/python packages/segment/tools/make_png_fixtures.py
Produces test/fixtures/png/{p8,p4,l8}.png and expected.json (the index arrays).
"""
import json
import os

import numpy as np
from PIL import Image

OUT = os.path.join(os.path.dirname(__file__), "..", "test", "fixtures", "png")


def voc_palette():
    pal = []
    for i in range(256):
        r = g = b = 0
        c = i
        for j in range(8):
            r |= ((c >> 0) & 1) << (7 - j)
            g |= ((c >> 1) & 1) << (7 - j)
            b |= ((c >> 2) & 1) << (7 - j)
            c >>= 3
        pal += [r, g, b]
    return pal


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(7)
    expected = {}
    # 8-bit palette mask like VOC SegmentationClass: ids 0-20 and 255 borders, odd width
    p8 = rng.integers(0, 21, size=(13, 19)).astype(np.uint8)
    p8[0, :] = 255
    p8[:, 5] = 255
    im = Image.fromarray(p8, mode="P")
    im.putpalette(voc_palette())
    im.save(os.path.join(OUT, "p8.png"), optimize=False)
    expected["p8"] = {"width": 19, "height": 13, "data": p8.ravel().tolist()}
    # 4-bit palette (Pillow writes bits=4 when asked), ids 0-15
    p4 = rng.integers(0, 16, size=(7, 11)).astype(np.uint8)
    im = Image.fromarray(p4, mode="P")
    im.putpalette(voc_palette()[: 16 * 3])
    im.save(os.path.join(OUT, "p4.png"), bits=4)
    expected["p4"] = {"width": 11, "height": 7, "data": p4.ravel().tolist()}
    # 8-bit greyscale like CamVid annotations / Cityscapes labelIds
    l8 = rng.integers(0, 34, size=(9, 14)).astype(np.uint8)
    Image.fromarray(l8, mode="L").save(os.path.join(OUT, "l8.png"))
    expected["l8"] = {"width": 14, "height": 9, "data": l8.ravel().tolist()}
    with open(os.path.join(OUT, "expected.json"), "w") as f:
        json.dump(expected, f)
    print("wrote", sorted(os.listdir(OUT)))


if __name__ == "__main__":
    main()
