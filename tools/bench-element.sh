#!/usr/bin/env bash
# The element benchmark: raw RGB clips of real FER2013 faces (1, 4 and 10 faces at 640x480,
# 1280x720 and 1920x1080) through
#   (a) ferfilter, detection every frame: with the defaults (YuNet; automatic at the clips' 30 fps:
#       tracked faces re-detected every frame, the search for new faces spread over 4 frames; each
#       tracked face classified every other frame, the tracks taking turns), with
#       classify-interval=1 (every face classified on every frame) and with scan-spread=1 (the
#       whole frame searched every frame), and with detector=haar (the Haar cascade, the default
#       until 2026-12-07)
# (VARIANTS="ferfilter ferfilter-haar" limits the run to those)
#   (b) ferfilter detect-interval=3 (tracks carry the boxes between)
#   (c) gst-plugins-bad facedetect (detection only)
#   (d) identity (the pipeline's own cost)
# all in one run, one element at a time, no display (sync=false). Prints a Markdown table:
# frames per second, the element's per-frame latency p50/p99 (GStreamer's latency tracer),
# peak memory of the process, faces reported per frame, and fps as a ratio to facedetect.
#   tools/bench-element.sh [frames] [sizes...]      e.g. tools/bench-element.sh 120 640x480 1920x1080@60
# (a size may carry a frame rate, 30 by default: ferfilter's automatic classify-interval and
# scan-spread follow it)
# Needs: the plugin installed (plugin/meson-free-build.sh), gstreamer1.0-opencv for facedetect,
# python3 for the figures, .build/release/fer, FER2013 beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-120}; shift || true
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(640x480 1280x720 1920x1080)
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
have_facedetect=1; gst-inspect-1.0 facedetect >/dev/null 2>&1 || have_facedetect=0

echo "| clip | element | fps | latency p50 (ms) | latency p99 (ms) | peak RSS (MB) | faces/frame | fps vs facedetect |"
echo "|---|---|---:|---:|---:|---:|---:|---:|"
for size in "${sizes[@]}"; do
  rate=30; case $size in *@*) rate=${size#*@}; size=${size%@*};; esac
  w=${size%x*}; h=${size#*x}
  label=$size; [ "$rate" = 30 ] || label="$size@$rate"
  for faces in 1 4 10; do
    case $faces in 1) cols=1; rows=1;; 4) cols=2; rows=2;; 10) cols=4; rows=3;; esac
    face=$(python3 -c "print(int(min($w / $cols, $h / $rows) * 0.6))")
    .build/release/fer scene --frames "$frames" --faces "$faces" --size "$face" --first 12 --width "$w" --height "$h" \
      --output "$tmp/clip.gray" >/dev/null 2>&1
    gst-launch-1.0 -q filesrc location="$tmp/clip.gray" ! rawvideoparse format=gray8 width="$w" height="$h" framerate="$rate"/1 \
      ! videoconvert ! video/x-raw,format=RGB ! filesink location="$tmp/clip.rgb"
    rm -f "$tmp/clip.gray"
    src="filesrc location=$tmp/clip.rgb blocksize=$((w * h * 3)) ! rawvideoparse format=rgb width=$w height=$h framerate=$rate/1"
    fd_fps=""
    for variant in ${VARIANTS:-facedetect ferfilter ferfilter-haar ferfilter-classify1 ferfilter-spread1 ferfilter-interval3 identity}; do
      case $variant in
        facedetect) [ $have_facedetect = 1 ] || continue; el="facedetect display=false"; name=facedetect ;;
        ferfilter) el="ferfilter draw=true"; name="ferfilter (defaults: YuNet)" ;;
        ferfilter-haar) el="ferfilter draw=true detector=haar"; name="ferfilter detector=haar" ;;
        ferfilter-classify1) el="ferfilter draw=true classify-interval=1"; name="ferfilter classify-interval=1" ;;
        ferfilter-spread1) el="ferfilter draw=true scan-spread=1"; name="ferfilter scan-spread=1" ;;
        ferfilter-interval3) el="ferfilter draw=true detect-interval=3"; name="ferfilter detect-interval=3" ;;
        identity) el="identity"; name=identity ;;
      esac
      start=$(date +%s%N)
      GST_TRACERS="latency(flags=element)" GST_DEBUG="GST_TRACER:7" GST_DEBUG_NO_COLOR=1 \
        /usr/bin/time -f "%M" -o "$tmp/rss" gst-launch-1.0 -m $src ! $el name=dut ! fakesink sync=false \
        > "$tmp/out.txt" 2> "$tmp/trace.txt"
      end=$(date +%s%N)
      python3 - "$label/$faces faces" "$name" "$frames" "$start" "$end" "$tmp/rss" "$tmp/out.txt" "$tmp/trace.txt" "$fd_fps" \
        > "$tmp/row" <<'PY'
import re, sys
clip, name, frames, start, end, rss, out, trace, fd = sys.argv[1:10]
frames = int(frames); secs = (int(end) - int(start)) / 1e9
fps = frames / secs
lat = sorted(int(m.group(1)) / 1e6 for m in re.finditer(r'element=\(string\)dut, src=\(string\)src, time=\(guint64\)(\d+)', open(trace, errors="replace").read()))
pct = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] if lat else float("nan")
mb = int(open(rss).read().split()[-1]) / 1024
msgs = [l for l in open(out, errors="replace") if "(element)" in l and ("facedetect" in l or "ferfilter," in l)]
faces = sum(len(re.findall(r'"face\\,', l)) for l in msgs) / frames if msgs else float("nan")
ratio = f"{fps / float(fd):.2f}x" if fd else ("1.00x" if name == "facedetect" else "")
faces_s = "" if faces != faces else f"{faces:.2f}"
print(f"| {clip} | {name} | {fps:.1f} | {pct(0.5):.1f} | {pct(0.99):.1f} | {mb:.0f} | {faces_s} | {ratio} |")
PY
      cat "$tmp/row"
      [ "$variant" = facedetect ] && fd_fps=$(python3 - "$frames" "$start" "$end" <<'PY'
import sys; f, s, e = map(int, sys.argv[1:4]); print(f / ((e - s) / 1e9))
PY
)
    done
    rm -f "$tmp/clip.rgb"
  done
done
