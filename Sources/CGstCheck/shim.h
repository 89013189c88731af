// GstHarness from gst-check (libgstreamer1.0-dev), for GstFER's tests only.
#include <gst/check/gstharness.h>
