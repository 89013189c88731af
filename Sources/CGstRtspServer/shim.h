// gst-rtsp-server (libgstrtspserver-1.0-dev), for `fer rtsp`.
#include <gst/rtsp-server/rtsp-server.h>
