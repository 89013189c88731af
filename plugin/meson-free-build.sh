#!/usr/bin/env bash
# Builds libgstfer.so (release) with SwiftPM and installs it, with the default model, where
# GStreamer finds it; then checks that gst-inspect-1.0 sees its four elements.
#
#   plugin/meson-free-build.sh                 # user install: ~/.local/share/gstreamer-1.0/plugins
#   plugin/meson-free-build.sh --prefix /usr/local   # system: $prefix/lib/<multiarch>/gstreamer-1.0
#   plugin/meson-free-build.sh --dest DIR      # any plugin directory (then GST_PLUGIN_PATH=DIR)
#   plugin/meson-free-build.sh --portable      # for any x86-64 CPU, not only this one's kind
# On an x86-64 CPU with AVX2 and FMA (Intel since 2013, AMD since 2015) the Swift code is compiled
# for them (about 8% more frames per second); such a build refuses to load, with a warning, on a
# CPU without them. --portable (or a CPU without them) builds for any x86-64.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

prefix="" dest="" portable=0
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --dest) dest="$2"; shift 2 ;;
    --portable) portable=1; shift ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
if [ -z "$dest" ]; then
  if [ -n "$prefix" ]; then
    dest="$prefix/lib/$(gcc -dumpmachine 2>/dev/null || echo x86_64-linux-gnu)/gstreamer-1.0"
  else
    dest="${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins"
  fi
fi

swift_lib="$(dirname "$(dirname "$(readlink -f "$(command -v swift)")")")/lib/swift/linux"
cpu_flags=()
if [ "$portable" = 0 ] && [ "$(uname -m)" = x86_64 ] && grep -qw avx2 /proc/cpuinfo && grep -qw fma /proc/cpuinfo; then
  # its own build directory, so that the tests' build (any x86-64) and this one do not rebuild each other
  cpu_flags=(--scratch-path .build-avx2 -Xswiftc -target-cpu -Xswiftc haswell -Xcc -DGSTFER_REQUIRE_AVX2)
  echo "building libgstfer.so (release, for CPUs with AVX2 and FMA, as this one; --portable for any x86-64)"
else
  echo "building libgstfer.so (release, for any $(uname -m))"
fi
echo "(Swift runtime from $swift_lib)"
swift build -c release --product gstfer "${cpu_flags[@]}" -Xlinker -rpath -Xlinker "$swift_lib"
bin="$(swift build -c release "${cpu_flags[@]}" --show-bin-path)"

mkdir -p "$dest/gstfer"
install -m 0755 "$bin/libgstfer.so" "$dest/libgstfer.so"
if [ -f Models/fernet.json ]; then
  install -m 0644 Models/fernet.json Models/fernet.weights "$dest/gstfer/"
else
  echo "warning: Models/fernet.json missing; set ferfilter's model property" >&2
fi
# the face detector (YuNet, MIT licence: its licence and provenance go with it)
install -m 0644 Models/face_detection_yunet_2023mar.onnx Models/face_detection_yunet_2023mar.LICENSE "$dest/gstfer/"
echo "installed $dest/libgstfer.so, the model and the face detector in $dest/gstfer/"

# the user directory is searched by default; any other one needs GST_PLUGIN_PATH
case "$dest" in
  "${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins") ;;
  *) export GST_PLUGIN_PATH="$dest${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" ;;
esac
if gst-inspect-1.0 ferfilter >/dev/null 2>&1; then
  gst-inspect-1.0 ferfilter | sed -n '1,12p'
  for e in ferseiinsert ferseiextract feroverlay; do
    gst-inspect-1.0 "$e" >/dev/null 2>&1 || { echo "error: gst-inspect-1.0 finds ferfilter but not $e in $dest" >&2; exit 1; }
  done
  echo "ok: gst-inspect-1.0 finds ferfilter, ferseiinsert, ferseiextract and feroverlay"
else
  echo "error: gst-inspect-1.0 does not find ferfilter in $dest" >&2
  GST_DEBUG=2 gst-inspect-1.0 "$dest/libgstfer.so" >&2 || true
  exit 1
fi
