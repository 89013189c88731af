#!/usr/bin/env bash
# The main job: ferfilter annotating a real face video with the shipped model.
#   examples/demo.sh            webcam to screen when there is one (and a display), else the FER2013 clip
#   CLIP=video.mp4 examples/demo.sh   annotate your own clip
# Writes out/annotated.mp4 (the emotions inside it as SEI, read back into out/annotated.jsonl) and
# out/annotated.png, and prints what ferfilter found.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"
mkdir -p out
FER=.build/release/fer

if [ -z "${CLIP:-}" ] && [ -e /dev/video0 ] && [ -n "${DISPLAY:-}${WAYLAND_DISPLAY:-}" ]; then
  echo "webcam found: showing it annotated (Ctrl-C to stop)"
  exec gst-launch-1.0 v4l2src ! videoconvert ! ferfilter ! videoconvert ! autovideosink
fi

if [ -z "${CLIP:-}" ]; then
  echo "no webcam: building a clip of real FER2013 PublicTest faces (out/faces.mp4)"
  $FER scene --frames 300 --faces 6 --size 130 --first 12 --output out/clip.gray >/dev/null
  gst-launch-1.0 -q filesrc location=out/clip.gray ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1 \
    ! videoconvert ! x264enc speed-preset=ultrafast ! mp4mux ! filesink location=out/faces.mp4
  rm -f out/clip.gray
  CLIP=out/faces.mp4
fi

echo "annotating $CLIP -> out/annotated.mp4"
start=$(date +%s%N)
gst-launch-1.0 -m filesrc location="$CLIP" ! decodebin ! videoconvert ! ferfilter draw-probabilities=true \
  ! videoconvert ! x264enc speed-preset=veryfast ! ferseiinsert ! mp4mux ! filesink location=out/annotated.mp4 \
  | grep -o 'emotion\\=\\(string\\)[a-z]*' | sed 's/.*)//' | sort | uniq -c | sort -rn > out/emotions.txt
end=$(date +%s%N)
gst-launch-1.0 -q filesrc location=out/annotated.mp4 ! decodebin ! videoconvert ! pngenc snapshot=true ! filesink location=out/annotated.png
echo "done in $(( (end - start) / 1000000 )) ms: out/annotated.mp4, first frame out/annotated.png"
# the faces and emotions travel inside the MP4 (SEI): read them back with no model
gst-launch-1.0 -q filesrc location=out/annotated.mp4 ! qtdemux ! h264parse ! ferseiextract results=out/annotated.jsonl ! fakesink
echo "out/annotated.mp4 carries every frame's faces and emotions inside it: $(( $(wc -l < out/annotated.jsonl) - 1 )) frames read back by ferseiextract into out/annotated.jsonl"
echo "faces labelled over the clip (face-frames per emotion):"
cat out/emotions.txt
