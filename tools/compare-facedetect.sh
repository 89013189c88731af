#!/usr/bin/env bash
# ferfilter beside gst-plugins-bad's facedetect on one clip of real FER2013 faces, in one run:
# faces found and frames per second for each (no display, sync=false). Needs gstreamer1.0-opencv
# for facedetect and the plugin installed (plugin/meson-free-build.sh).
#   tools/compare-facedetect.sh [frames] [faces] [width] [height]
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-150} faces=${2:-6} width=${3:-640} height=${4:-480}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
size=$(( height / 4 ))
.build/release/fer scene --frames "$frames" --faces "$faces" --size "$size" --first 12 --width "$width" --height "$height" \
  --output "$tmp/clip.gray" >/dev/null 2>&1
src="filesrc location=$tmp/clip.gray ! rawvideoparse format=gray8 width=$width height=$height framerate=30/1 ! videoconvert ! video/x-raw,format=RGB"
# decode once into memory-speed raw RGB so both elements see the same input
gst-launch-1.0 -q $src ! filesink location="$tmp/clip.rgb"
rgb="filesrc location=$tmp/clip.rgb blocksize=$((width * height * 3)) ! rawvideoparse format=rgb width=$width height=$height framerate=30/1"

run() {  # name, element
  local start end
  start=$(date +%s%N)
  gst-launch-1.0 -m $rgb ! $2 ! fakesink sync=false > "$tmp/messages.txt" 2>/dev/null
  end=$(date +%s%N)
  python3 - "$1" "$frames" "$start" "$end" "$tmp/messages.txt" <<'PY'
import re, sys
name, frames, start, end, path = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
msgs = [l for l in open(path, errors="replace") if "(element)" in l and ("facedetect" in l or "ferfilter," in l)]
faces = sum(len(re.findall(r'"face\\,', l)) for l in msgs)
secs = (end - start) / 1e9
print(f"{name:38s} {faces:6d} faces in {len(msgs):4d} messages, {frames / secs:7.1f} fps ({secs:.2f} s for {frames} frames)")
PY
}
echo "clip: $frames frames ${width}x${height}, $faces FER2013 faces of ${size}px, raw RGB"
run "facedetect (defaults)" "facedetect display=false"
run "facedetect scale-factor=1.1" "facedetect display=false scale-factor=1.1"
run "ferfilter (detect+classify, defaults)" "ferfilter draw=false"
run "ferfilter classify-interval=1" "ferfilter draw=false classify-interval=1"
run "ferfilter scale-factor=1.15" "ferfilter draw=false scale-factor=1.15"
run "ferfilter detect-interval=3" "ferfilter draw=false detect-interval=3"
