// GStreamer's libraries for applications, one module so their types are declared once:
// appsink (libgstreamer-plugins-base1.0-dev) for the web viewer, gst-rtsp-server
// (libgstrtspserver-1.0-dev) for `fer rtsp`.
#include <gst/gst.h>
#include <gst/app/app.h>
#include <gst/rtsp-server/rtsp-server.h>

/* G_TYPE_BOOLEAN and G_TYPE_DOUBLE are macros Swift cannot import */
static inline GType gstfer_viewer_type_boolean (void) { return G_TYPE_BOOLEAN; }
static inline GType gstfer_viewer_type_double (void) { return G_TYPE_DOUBLE; }
