#!/usr/bin/env bash
# How many 30 fps streams one machine annotates as fast as they arrive. N copies of a clip of real
# FER2013 faces (4 faces, 30 fps) go through ferfilter (defaults, drawing on) in one gst-launch-1.0
# process, one branch each, as fast as they can (sync=false), for FRAMES frames; the elements share
# one copy of the model. Prints a Markdown table: per N, the wall time, the frames per second each
# stream got, the sum, and whether each stream kept 30 fps (the capacity of this machine).
#   tools/bench-streams.sh [frames] [size] [counts...]      e.g. tools/bench-streams.sh 300 1280x720 1 2 3 4
# Needs: the plugin installed (plugin/meson-free-build.sh), .build/release/fer, FER2013 beside the
# checkout. Pause anything else the machine runs (training) for figures worth comparing.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-300}; size=${2:-1280x720}; shift 2 || shift $#
counts=("$@"); [ ${#counts[@]} -gt 0 ] || counts=(1 2 3 4)
w=${size%x*}; h=${size#*x}
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

face=$(( (h / 2) * 6 / 10 ))
.build/release/fer scene --frames "$frames" --faces 4 --size "$face" --first 12 --width "$w" --height "$h" \
  --output "$tmp/clip.gray" >/dev/null 2>&1
gst-launch-1.0 -q filesrc location="$tmp/clip.gray" ! rawvideoparse format=gray8 width="$w" height="$h" framerate=30/1 \
  ! videoconvert ! video/x-raw,format=I420 ! filesink location="$tmp/clip.i420"
rm -f "$tmp/clip.gray"

echo "| $size, 4 faces, 30 fps | wall time (s) | fps per stream (min-max) | fps, all streams | peak RSS (MB) | every stream at 30 fps |"
echo "|---|---:|---:|---:|---:|---|"
for n in "${counts[@]}"; do
  line=""
  for k in $(seq 1 "$n"); do
    line+=" filesrc location=$tmp/clip.i420 blocksize=$((w * h * 3 / 2)) ! rawvideoparse format=i420 width=$w height=$h framerate=30/1"
    line+=" ! ferfilter name=s$k message-mode=none results=$tmp/s$k.jsonl ! fakesink sync=false"
  done
  start=$(date +%s%N)
  /usr/bin/time -f "%M" -o "$tmp/rss" gst-launch-1.0 -q $line
  end=$(date +%s%N)
  # each stream's own rate: its frames over the wall time between its first and last results line
  python3 - "$n" "$start" "$end" "$tmp" <<'PY'
import json, sys
from datetime import datetime
n, start, end, tmp = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
fps = []
for k in range(1, n + 1):
    times = [datetime.fromisoformat(o["wall_time"].replace("Z", "+00:00")).timestamp()
             for o in map(json.loads, open(f"{tmp}/s{k}.jsonl")) if "wall_time" in o]
    fps.append((len(times) - 1) / (times[-1] - times[0]))
wall = (end - start) / 1e9
mb = int(open(f"{tmp}/rss").read().split()[-1]) / 1024
ok = "yes" if min(fps) >= 30 else "no"
print(f"| {n} stream{'s' if n > 1 else ''} | {wall:.1f} | {min(fps):.1f}-{max(fps):.1f} | {sum(fps):.1f} | {mb:.0f} | {ok} |")
PY
done
