#!/usr/bin/env bash
# Two or more builds of the plugin on the same clips in one run, taking turns: for a change's
# "before and after" (or checked against unchecked code) without the host's mood between runs.
#   tools/bench-builds.sh [--frames N] [--rounds R] [--sizes "1280x720 1920x1080"] [--faces 4] NAME=PLUGIN_DIR[:PROPS] ...
# e.g. (the tree as of another commit in a worktree, built with plugin/meson-free-build.sh --dest):
#   git worktree add /tmp/before HEAD~1 && (cd /tmp/before && plugin/meson-free-build.sh --dest /tmp/before-plugin)
#   tools/bench-builds.sh before=/tmp/before-plugin after=.build/gst-plugins
# PROPS, after a colon, are ferfilter properties for that build only, e.g. the same detector as an
# older build's default: after-haar=.build/gst-plugins:"detector=haar"
# Each round runs every build once on each clip (4 FER2013 faces by default, raw RGB at 30 fps, ferfilter
# with its defaults into fakesink sync=false); prints every round's fps and, per build and clip,
# the median fps and the element's latency p99 (GStreamer's latency tracer) over the rounds.
# Needs .build/release/fer (the clips), FER2013 beside the checkout, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=240 rounds=3 sizes="1280x720 1920x1080" faces=4
while [ $# -gt 0 ]; do
  case "$1" in
    --frames) frames="$2"; shift 2 ;;
    --rounds) rounds="$2"; shift 2 ;;
    --sizes) sizes="$2"; shift 2 ;;
    --faces) faces="$2"; shift 2 ;;
    -h|--help) sed -n '2,14p' "$0"; exit 0 ;;
    *=*) break ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[ $# -ge 1 ] || { echo "name at least one build: NAME=PLUGIN_DIR" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
system="/usr/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/gstreamer-1.0"   # not the user's plugin directory
for build in "$@"; do
  dir="${build#*=}"; dir="${dir%%:*}"
  [ -f "$dir/libgstfer.so" ] || { echo "no libgstfer.so in $dir" >&2; exit 2; }
done

for size in $sizes; do
  w=${size%x*}; h=${size#*x}
  face=$(python3 -c "import math; c = math.ceil(math.sqrt($faces)); r = math.ceil($faces / c); print(int(min($w / c, $h / r) * 0.6))")   # as bench-element.sh
  .build/release/fer scene --frames "$frames" --faces "$faces" --size "$face" --first 12 --width "$w" --height "$h" \
    --output "$tmp/clip.gray" >/dev/null
  gst-launch-1.0 -q filesrc location="$tmp/clip.gray" ! rawvideoparse format=gray8 width="$w" height="$h" framerate=30/1 \
    ! videoconvert ! video/x-raw,format=RGB ! filesink location="$tmp/$size.rgb"
  rm -f "$tmp/clip.gray"
done

echo "| round | clip | build | fps | latency p99 (ms) |"
echo "|---:|---|---|---:|---:|"
for round in $(seq 1 "$rounds"); do
  for size in $sizes; do
    w=${size%x*}; h=${size#*x}
    for build in "$@"; do
      name="${build%%=*}"; spec="${build#*=}"; dir="$(readlink -f "${spec%%:*}")"
      props=""; [ "$spec" = "${spec#*:}" ] || props="${spec#*:}"
      start=$(date +%s%N)
      # only this build's plugin: its own registry, no user plugin directory
      GST_PLUGIN_PATH_1_0="$dir" GST_PLUGIN_PATH="" GST_REGISTRY_1_0="$tmp/registry-$name.bin" \
        GST_PLUGIN_SYSTEM_PATH_1_0="$system" \
        GST_TRACERS="latency(flags=element)" GST_DEBUG="GST_TRACER:7" GST_DEBUG_NO_COLOR=1 \
        gst-launch-1.0 -q filesrc location="$tmp/$size.rgb" blocksize=$((w * h * 3)) \
          ! rawvideoparse format=rgb width="$w" height="$h" framerate=30/1 ! ferfilter name=dut $props ! fakesink sync=false \
          > /dev/null 2> "$tmp/trace.txt"
      end=$(date +%s%N)
      python3 - "$round" "$size" "$name" "$frames" "$start" "$end" "$tmp/trace.txt" >> "$tmp/rows" <<'PY'
import re, sys
rnd, size, name, frames, start, end, trace = sys.argv[1:8]
fps = int(frames) / ((int(end) - int(start)) / 1e9)
lat = sorted(int(m.group(1)) / 1e6 for m in re.finditer(r'element=\(string\)dut, src=\(string\)src, time=\(guint64\)(\d+)',
                                                         open(trace, errors="replace").read()))
p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] if lat else float("nan")
print(f"{rnd}\t{size}\t{name}\t{fps:.1f}\t{p99:.1f}")
PY
      tail -1 "$tmp/rows" | awk -F'\t' '{printf "| %s | %s | %s | %s | %s |\n", $1, $2, $3, $4, $5}'
    done
  done
done
echo
echo "| clip | build | median fps | median latency p99 (ms) |"
echo "|---|---|---:|---:|"
python3 - "$tmp/rows" "$faces" <<'PY'
import statistics, sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
faces = sys.argv[2]
seen = []
for r in rows:
    if (r[1], r[2]) not in seen: seen.append((r[1], r[2]))
for size, name in seen:
    fps = [float(r[3]) for r in rows if (r[1], r[2]) == (size, name)]
    p99 = [float(r[4]) for r in rows if (r[1], r[2]) == (size, name)]
    print(f"| {size}/{faces} faces | {name} | {statistics.median(fps):.1f} | {statistics.median(p99):.1f} |")
PY
