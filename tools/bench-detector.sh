#!/usr/bin/env bash
# The face detector alone, GstFER's YuNet against OpenCV's own runtime of the same file
# (cv2.FaceDetectorYN), on the same picture: a 1280x720 frame of four FER2013 faces, fed at
# 640x360 and at its own size, with 1 and 2 threads. Prints milliseconds a detection (median of
# 40), faces found, and our speed as a ratio to OpenCV's (>1: ours is faster).
#   tools/bench-detector.sh
# Needs .build/release/fer and FER2013 beside the checkout; OpenCV's figures need python3 with
# opencv-python (python3 -m pip install opencv-python-headless; skipped, saying so, without it).
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
FER=.build/release/fer
MODEL=Models/face_detection_yunet_2023mar.onnx
$FER scene --width 1280 --height 720 --faces 4 --size 150 --output "$tmp/scene.png" >/dev/null 2>&1
PY=${PYTHON:-python3}
have_cv=1; $PY -c "import cv2" 2>/dev/null || have_cv=0
[ $have_cv = 1 ] || echo "(OpenCV for Python not found: only GstFER's figures; python3 -m pip install opencv-python-headless, or PYTHON=...)"
echo "| input | threads | GstFER YuNet (ms) | faces | OpenCV YuNet (ms) | faces | speed vs OpenCV |"
echo "|---|---:|---:|---:|---:|---:|---:|"
for width in 640 1280; do
  for threads in 1 2; do
    line=$($FER detect "$tmp/scene.png" --width $width --repeats 40 --threads $threads | head -1)
    ours=$(echo "$line" | sed -E 's/.* ([0-9.]+) ms.*/\1/'); ours_faces=$(echo "$line" | sed -E 's/.*: ([0-9]+) faces.*/\1/')
    cv="" ; cv_faces=""; ratio=""
    if [ $have_cv = 1 ]; then
      read -r cv cv_faces < <($PY - "$tmp/scene.png" "$width" "$threads" "$MODEL" <<'PY' 2>/dev/null
import cv2, sys, time
path, width, threads, model = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cv2.setNumThreads(threads)
img = cv2.imread(path); h = round(img.shape[0] * width / img.shape[1])
if width != img.shape[1]: img = cv2.resize(img, (width, h), interpolation=cv2.INTER_AREA)
det = cv2.FaceDetectorYN.create(model, "", (width, h), 0.6, 0.3, 5000)
for _ in range(5): det.detect(img)
ts = []
for _ in range(40):
    t = time.perf_counter(); _, f = det.detect(img); ts.append(time.perf_counter() - t)
print("%.1f %d" % (sorted(ts)[20] * 1000, 0 if f is None else len(f)))
PY
)
      ratio=$(python3 -c "print('%.2fx' % ($cv / $ours))")
    fi
    h=$((720 * width / 1280))
    echo "| ${width}x${h} | $threads | $ours | $ours_faces | $cv | $cv_faces | $ratio |"
  done
done
