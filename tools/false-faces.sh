#!/usr/bin/env bash
# Faces ferfilter reports where there are none: 300 frames at 1280x720 of videotestsrc's smpte,
# ball and snow patterns, and a photo of a building (OpenCV's samples/data/building.jpg from
# Debian's opencv-doc package, or the picture given) shown for 30 frames at its own size.
#   tools/false-faces.sh [PHOTO] [-- FERFILTER PROPERTIES]
# Prints, per source, the frames and the faces reported over them (0 is right). Uses the
# installed plugin (as gst-launch-1.0 finds it).
set -euo pipefail
photo=/usr/share/doc/opencv-doc/examples/data/building.jpg
props=()
while [ $# -gt 0 ]; do
  case "$1" in
    --) shift; props=("$@"); break ;;
    -h|--help) sed -n '2,7p' "$0"; exit 0 ;;
    *) photo="$1"; shift ;;
  esac
done
count() {   # faces in the ferfilter messages of a gst-launch -m run on stdin
  { grep -o 'ferfilter, .*count=(uint)[0-9]*' || true; } | sed 's/.*count=(uint)//' | awk '{ n += $1 } END { print n + 0 }'
}
echo "| source | frames | faces reported |"
echo "|---|---:|---:|"
for pattern in smpte ball snow; do
  n=$(gst-launch-1.0 -m videotestsrc pattern=$pattern num-buffers=300 ! video/x-raw,width=1280,height=720 \
        ! ferfilter "${props[@]}" ! fakesink 2>&1 | count)
  echo "| videotestsrc pattern=$pattern, 1280x720 | 300 | $n |"
done
if [ -f "$photo" ]; then
  n=$(gst-launch-1.0 -m filesrc location="$photo" ! decodebin ! videoconvert ! imagefreeze num-buffers=30 \
        ! ferfilter "${props[@]}" ! fakesink 2>&1 | count)
  echo "| $(basename "$photo") | 30 | $n |"
else
  echo "| (no photo: $photo is missing; apt-get install opencv-doc, or name a picture) | | |"
fi
