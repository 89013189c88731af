#!/usr/bin/env python3
"""OpenCV's own runtime of YuNet on wild-dev: the reference GstFER's detector is measured against.

usage: tools/yunet_wild_dev.py [--data ../shared/data/wild-dev] [--model Models/face_detection_yunet_2023mar.onnx]
Needs opencv-python (python3 -m pip install opencv-python-headless). For each photo, as given and
centred on a grey canvas twice its size (wild-dev's padded variant), runs cv2.FaceDetectorYN
(score 0.6, NMS 0.3) fed BGR or grey, at the photo's own size, scaled to at most 640 px, and
scaled to at most 640 and at least 320 px (GstFER's YuNetDetector.pictureScale), and prints how
many photos have a face. Detection only: no labels are read.
"""
import argparse, csv, os
import cv2
import numpy as np

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "wild-dev"))
ap.add_argument("--model", default=os.path.join(here, "..", "Models", "face_detection_yunet_2023mar.onnx"))
a = ap.parse_args()

rows = list(csv.DictReader(open(os.path.join(a.data, "labels.csv"))))
det = cv2.FaceDetectorYN.create(a.model, "", (320, 320), 0.6, 0.3, 5000)
sizes = [("own size", None, None), ("at most 640", 640, None), ("640 down, 320 up", 640, 320)]

def found(img, limit, least, grey):
    h, w = img.shape[:2]
    s = min(1.0, limit / max(w, h)) if limit else 1.0
    if least and max(w, h) * s < least:
        s = least / max(w, h)
    if grey:
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    W, H = max(1, round(w * s)), max(1, round(h * s))
    if (W, H) != (w, h):
        img = cv2.resize(img, (W, H), interpolation=cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR)
    det.setInputSize((W, H))
    _, faces = det.detect(img)
    return faces is not None and len(faces) > 0

counts = {}
for r in rows:
    img = cv2.imread(os.path.join(a.data, "images", r["file"]), cv2.IMREAD_COLOR)
    h, w = img.shape[:2]
    pad = np.full((2 * h, 2 * w, 3), 128, np.uint8)
    pad[h // 2:h // 2 + h, w // 2:w // 2 + w] = img
    for variant, im in (("as given", img), ("padded", pad)):
        for colour in ("BGR", "grey"):
            for name, limit, least in sizes:
                k = (variant, colour, name)
                counts[k] = counts.get(k, 0) + found(im, limit, least, colour == "grey")

print("| photos | fed | " + " | ".join(n for n, _, _ in sizes) + " |")
print("|---|---|" + "---:|" * len(sizes))
for variant in ("as given", "padded"):
    for colour in ("BGR", "grey"):
        print(f"| {variant} | {colour} | " + " | ".join(f"{counts[(variant, colour, n)]}/{len(rows)}" for n, _, _ in sizes) + " |")
