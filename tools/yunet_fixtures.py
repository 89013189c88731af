#!/usr/bin/env python3
"""Reference numbers for the YuNet face detector (Models/face_detection_yunet_2023mar.onnx).

Runs the published ONNX file with onnxruntime, and OpenCV's own FaceDetectorYN, on real photos
from ../shared/data/wild-dev, and writes Tests/FaceDetectTests/Fixtures/yunet_*.json and .bin:
the raw outputs of the network (float32, the graph's outputs in order) for the photo padded to a
multiple of 32 as OpenCV pads it, and OpenCV's decoded faces. The photo's pixels are not stored:
the test decodes the same JPEG and checks the pixels' FNV-1a hash first.

usage: python3 -m venv /tmp/venv && /tmp/venv/bin/pip install onnx onnxruntime opencv-python-headless pillow
       /tmp/venv/bin/python tools/yunet_fixtures.py
"""
import json, os, sys
import numpy as np, onnx, onnxruntime as ort, cv2
from PIL import Image

root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
model_path = os.path.join(root, "Models", "face_detection_yunet_2023mar.onnx")
photos = os.path.join(root, "..", "shared", "data", "wild-dev", "images")
out_dir = os.path.join(root, "Tests", "FaceDetectTests", "Fixtures")

# The file declares a fixed 640x640 input; the network is fully convolutional, so make H and W free.
model = onnx.load(model_path)
for v in model.graph.output:
    v.type.tensor_type.ClearField("shape")
for v in model.graph.input:
    dims = v.type.tensor_type.shape.dim
    dims[2].dim_param = "h"; dims[3].dim_param = "w"
model.graph.ClearField("value_info")
ort.set_default_logger_severity(3)
opts = ort.SessionOptions(); opts.intra_op_num_threads = 2
opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL   # plain float32 arithmetic
session = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]

def fixture(name, photo):
    im = Image.open(os.path.join(photos, photo))
    mode = im.mode
    pixels = np.asarray(im)
    digest = 0xcbf29ce484222325   # FNV-1a, 64 bits, over the decoded pixels (grey, or RGB in rows)
    for b in pixels.tobytes():
        digest = ((digest ^ b) * 0x100000001b3) & 0xffffffffffffffff
    rgb = np.asarray(im.convert("RGB"))
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    h, w = bgr.shape[:2]
    ph, pw = (h - 1) // 32 * 32 + 32, (w - 1) // 32 * 32 + 32
    padded = np.zeros((ph, pw, 3), np.uint8); padded[:h, :w] = bgr
    x = padded.astype(np.float32).transpose(2, 0, 1)[None]
    outs = session.run(names, {"input": x})
    blob = b"".join(np.ascontiguousarray(o, np.float32).tobytes() for o in outs)
    open(os.path.join(out_dir, "yunet_%s.bin" % name), "wb").write(blob)
    det = cv2.FaceDetectorYN.create(model_path, "", (w, h), 0.6, 0.3, 5000)
    cv2.setNumThreads(2)
    _, faces = det.detect(bgr)
    faces = [] if faces is None else [[round(float(v), 3) for v in f] for f in faces]
    meta = {"photo": photo, "mode": mode, "width": w, "height": h, "pixels_fnv1a64": "%016x" % digest,
            "padded_width": pw, "padded_height": ph,
            "outputs": [{"name": n, "shape": list(o.shape)} for n, o in zip(names, outs)],
            "opencv": {"version": cv2.__version__, "score_threshold": 0.6, "nms_threshold": 0.3,
                       "faces_x_y_w_h_landmarks10_score": faces},
            "onnxruntime": ort.__version__}
    json.dump(meta, open(os.path.join(out_dir, "yunet_%s.json" % name), "w"), indent=1)
    print(name, photo, mode, w, h, "->", pw, ph, "faces", len(faces), "bytes", len(blob))

fixture("colour", "Dwarakish_159.jpg")
fixture("grey", "Lindsay_Davenport_0001.jpg")
