#!/usr/bin/env bash
# What publishing to MQTT costs the element: a 1280x720 clip of four FER2013 faces through
# ferfilter (defaults, draw=true, results written to a file) with and without publish=mqtt://... to Debian's mosquitto on
# loopback, read by mosquitto_sub, in alternating rounds (this host moves 5-10% between runs).
# Prints a Markdown table: fps without and with publishing, the CPU time of the pipeline's
# process per frame (user + system: the element's own cost, apart from the broker's and the
# subscriber's, which share these cores here), the messages and kilobytes a second the pipeline
# published, and how many the subscriber received of those the element made.
#   tools/bench-publish.sh [frames] [rounds]
# Needs: the plugin installed (plugin/meson-free-build.sh), mosquitto and mosquitto-clients,
# .build/release/fer, FER2013 beside the checkout.
set -euo pipefail
cd "$(dirname "$0")/.."
frames=${1:-600}; rounds=${2:-3}
w=1280; h=720
tmp=$(mktemp -d)
broker=""; sub=""
trap '[ -n "$sub" ] && kill $sub 2>/dev/null; [ -n "$broker" ] && kill $broker 2>/dev/null; rm -rf "$tmp"' EXIT
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
mosquitto -p "$port" >/dev/null 2>&1 &
broker=$!
for i in $(seq 40); do (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.25; done
mosquitto_sub -p "$port" -t 'bench/#' -v > "$tmp/sub.txt" &
sub=$!
sleep 1

.build/release/fer scene --frames "$frames" --faces 4 --size 216 --first 12 --width $w --height $h --output "$tmp/clip.gray" >/dev/null 2>&1
gst-launch-1.0 -q filesrc location="$tmp/clip.gray" ! rawvideoparse format=gray8 width=$w height=$h framerate=30/1 \
  ! videoconvert ! video/x-raw,format=RGB ! filesink location="$tmp/clip.rgb"
rm -f "$tmp/clip.gray"
src="filesrc location=$tmp/clip.rgb blocksize=$((w * h * 3)) ! rawvideoparse format=rgb width=$w height=$h framerate=30/1"

echo "| round | fps without publish | fps with publish | CPU ms/frame without | CPU ms/frame with | messages/s | KB/s | received / made |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
for r in $(seq "$rounds"); do
  s=$(date +%s%N)
  /usr/bin/time -f "%U %S" -o "$tmp/cpu-plain" gst-launch-1.0 -q $src ! ferfilter draw=true results="$tmp/plain.jsonl" ! fakesink sync=false
  e=$(date +%s%N)
  plain=$(python3 -c "print(f'{$frames / (($e - $s) / 1e9):.1f}')")
  before=$(wc -l < "$tmp/sub.txt"); bytes_before=$(wc -c < "$tmp/sub.txt")
  s=$(date +%s%N)
  /usr/bin/time -f "%U %S" -o "$tmp/cpu-pub" gst-launch-1.0 -q $src ! ferfilter draw=true results="$tmp/results.jsonl" \
    publish="mqtt://127.0.0.1:$port/bench" ! fakesink sync=false
  e=$(date +%s%N)
  sleep 1
  after=$(wc -l < "$tmp/sub.txt"); bytes_after=$(wc -c < "$tmp/sub.txt")
  # made: a frames message per frame, the summary, and one per emotion change (status not counted)
  made=$(grep -c '' "$tmp/results.jsonl")
  got=$(tail -n +"$((before + 1))" "$tmp/sub.txt" | grep -vc '^bench/status ' || true)
  made=$((made + $(tail -n +"$((before + 1))" "$tmp/sub.txt" | grep -c '^bench/changes ' || true)))
  python3 - "$frames" "$s" "$e" "$plain" "$got" "$made" "$((bytes_after - bytes_before))" "$r" "$tmp/cpu-plain" "$tmp/cpu-pub" <<'PY'
import sys
frames, s, e, plain, got, made, nbytes, r, cpu_plain, cpu_pub = sys.argv[1:11]
secs = (int(e) - int(s)) / 1e9
cpu = lambda f: sum(map(float, open(f).read().split()[-2:])) * 1000 / int(frames)
print(f"| {r} | {plain} | {int(frames) / secs:.1f} | {cpu(cpu_plain):.2f} | {cpu(cpu_pub):.2f} | {int(got) / secs:.0f} | "
      f"{int(nbytes) / 1024 / secs:.0f} | {got} / {made} |")
PY
done
