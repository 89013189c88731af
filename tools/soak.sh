#!/usr/bin/env bash
# Memory and objects over a long run: ferfilter on a looping 640x480 clip of 4 real FER2013 faces,
# for FRAMES frames (default 18000: 10 minutes at 30 fps), resident memory sampled every 30 s, and
# GStreamer's leaks tracer listing the objects still alive when the pipeline ends.
#   tools/soak.sh [frames] [extra ferfilter properties...]
#   SYNC=false tools/soak.sh 100000     as fast as the machine goes instead of 30 fps
# Prints the samples, the growth from the first minute to the end, and the objects left alive.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-18000}; shift || true
sync=${SYNC:-true}
tmp=$(mktemp -d); trap 'kill $pid 2>/dev/null || true; rm -rf "$tmp"' EXIT
.build/release/fer scene --frames 300 --faces 4 --size 140 --first 12 --output "$tmp/clip.gray" >/dev/null 2>&1
# one file per frame, so the looping source holds one frame at a time, not the whole clip
split -b $((640 * 480)) -d -a 3 "$tmp/clip.gray" "$tmp/frame"
rm "$tmp/clip.gray"
start=$(date +%s)
GST_TRACERS=leaks GST_DEBUG=GST_TRACER:7 gst-launch-1.0 -q multifilesrc location="$tmp/frame%03d" loop=true num-buffers="$frames" \
  ! rawvideoparse format=gray8 width=640 height=480 framerate=30/1 ! videoconvert ! video/x-raw,format=I420 \
  ! ferfilter "$@" ! fakesink sync="$sync" > "$tmp/log" 2>&1 &
pid=$!
echo "| after (s) | RSS (MB) |"
echo "|---:|---:|"
first=""; rss=""; t=0
while kill -0 $pid 2>/dev/null; do
  for _ in $(seq 30); do sleep 1; kill -0 $pid 2>/dev/null || break; done
  kill -0 $pid 2>/dev/null || break
  t=$(( $(date +%s) - start ))
  now=$(awk '/VmRSS/ {print $2}' /proc/$pid/status 2>/dev/null || true)
  [ -z "$now" ] && break
  rss=$now
  [ -z "$first" ] && [ $t -ge 55 ] && first=$rss
  printf "| %d | %.1f |\n" $t "$(echo "$rss / 1024" | bc -l)"
done
wait $pid || { echo "ferfilter pipeline failed:"; tail -20 "$tmp/log"; exit 1; }
secs=$(( $(date +%s) - start ))
alive=$(grep -a "object-alive, type-name=(string)[A-Za-z]" "$tmp/log" | grep -vc "%s" || true)
echo "$frames frames in $secs s ($(echo "$frames / $secs" | bc) fps, sync=$sync)"
[ -n "$first" ] && printf "RSS: %.1f MB after the first minute, %.1f MB at the end (%+.1f MB)\n" \
  "$(echo "$first / 1024" | bc -l)" "$(echo "$rss / 1024" | bc -l)" "$(echo "($rss - $first) / 1024" | bc -l)"
echo "GStreamer objects alive at the end (leaks tracer): $alive"
grep -a "object-alive, type-name=(string)[A-Za-z]" "$tmp/log" | grep -v "%s" | head -5 || true
