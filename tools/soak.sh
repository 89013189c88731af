#!/usr/bin/env bash
# Memory over a long run: ferfilter on a looping 640x480 clip of 4 real FER2013 faces at 30 fps
# (synchronised, as a camera would deliver), resident memory sampled every 30 s.
#   tools/soak.sh [seconds] [extra ferfilter properties...]     (default 600 s)
# Prints the samples and the growth between the first minute and the end.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}; shift || true
tmp=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
.build/release/fer scene --frames 300 --faces 4 --size 140 --first 12 --output "$tmp/clip.gray" >/dev/null 2>&1
# one file per frame, so the looping source holds one frame at a time, not the whole clip
split -b $((640 * 480)) -d -a 3 "$tmp/clip.gray" "$tmp/frame"
rm "$tmp/clip.gray"
gst-launch-1.0 -q multifilesrc location="$tmp/frame%03d" loop=true \
  ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1 ! videoconvert ! video/x-raw,format=I420 \
  ! ferfilter "$@" ! fakesink sync=true > /dev/null 2>&1 &
pid=$!
echo "| after (s) | RSS (MB) |"
echo "|---:|---:|"
first=""
for ((t = 30; t <= secs; t += 30)); do
  sleep 30
  kill -0 $pid 2>/dev/null || { echo "ferfilter pipeline exited early"; exit 1; }
  rss=$(awk '/VmRSS/ {print $2}' /proc/$pid/status)
  [ $t -eq 60 ] && first=$rss
  printf "| %d | %.1f |\n" $t "$(echo "$rss / 1024" | bc -l)"
done
[ -n "$first" ] && printf "growth from 60 s to %d s: %+.1f MB\n" $secs "$(echo "($rss - $first) / 1024" | bc -l)"
