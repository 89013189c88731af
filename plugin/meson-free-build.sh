#!/usr/bin/env bash
# Builds libgstfer.so (release) with SwiftPM and installs it, with the default model, where
# GStreamer finds it; then checks that gst-inspect-1.0 sees ferfilter.
#
#   plugin/meson-free-build.sh                 # user install: ~/.local/share/gstreamer-1.0/plugins
#   plugin/meson-free-build.sh --prefix /usr/local   # system: $prefix/lib/<multiarch>/gstreamer-1.0
#   plugin/meson-free-build.sh --dest DIR      # any plugin directory (then GST_PLUGIN_PATH=DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="/opt/swift/usr/bin:$PATH"

prefix="" dest=""
while [ $# -gt 0 ]; do
  case "$1" in
    --prefix) prefix="$2"; shift 2 ;;
    --dest) dest="$2"; shift 2 ;;
    -h|--help) sed -n '2,8p' "$0"; exit 0 ;;
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
echo "building libgstfer.so (release; Swift runtime from $swift_lib)"
swift build -c release --product gstfer -Xlinker -rpath -Xlinker "$swift_lib"
bin="$(swift build -c release --show-bin-path)"

mkdir -p "$dest/gstfer"
install -m 0755 "$bin/libgstfer.so" "$dest/libgstfer.so"
if [ -f Models/fernet.json ]; then
  install -m 0644 Models/fernet.json Models/fernet.weights "$dest/gstfer/"
else
  echo "warning: Models/fernet.json missing; set ferfilter's model property" >&2
fi
echo "installed $dest/libgstfer.so and the model in $dest/gstfer/"

# the user directory is searched by default; any other one needs GST_PLUGIN_PATH
case "$dest" in
  "${XDG_DATA_HOME:-$HOME/.local/share}/gstreamer-1.0/plugins") ;;
  *) export GST_PLUGIN_PATH="$dest${GST_PLUGIN_PATH:+:$GST_PLUGIN_PATH}" ;;
esac
if gst-inspect-1.0 ferfilter >/dev/null 2>&1; then
  gst-inspect-1.0 ferfilter | sed -n '1,12p'
  echo "ok: gst-inspect-1.0 ferfilter finds the element"
else
  echo "error: gst-inspect-1.0 does not find ferfilter in $dest" >&2
  GST_DEBUG=2 gst-inspect-1.0 "$dest/libgstfer.so" >&2 || true
  exit 1
fi
