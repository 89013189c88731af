// GStreamer's libraries for applications, one module so their types are declared once:
// appsink (libgstreamer-plugins-base1.0-dev) for the web viewer, gst-rtsp-server
// (libgstrtspserver-1.0-dev) for `fer rtsp`.
#include <gst/gst.h>
#include <gst/app/app.h>
#include <gst/rtsp-server/rtsp-server.h>
