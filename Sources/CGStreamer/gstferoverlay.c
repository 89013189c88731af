/* feroverlay's type, pads and metadata: a GstVideoFilter that draws the faces its frames carry
 * (its trampolines are gstferelement.c's). No behaviour lives here; see
 * Sources/GstFER/FerOverlay.swift. */
#include "CGStreamer.h"

GST_DEBUG_CATEGORY_STATIC (gst_fer_overlay_debug);
#define GST_CAT_DEFAULT gst_fer_overlay_debug

G_DEFINE_TYPE (GstFerOverlay, gst_fer_overlay, GST_TYPE_VIDEO_FILTER);

static void
gst_fer_overlay_class_init (GstFerOverlayClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstCaps *caps = gst_caps_from_string (GST_VIDEO_CAPS_MAKE (GSTFER_FORMATS));

  gstfer_class_init_glue (klass, GSTFER_KIND_OVERLAY);
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
  gst_element_class_set_static_metadata (element_class,
      "Facial expression overlay", "Filter/Effect/Video",
      "Draws the faces and emotions a frame carries (from ferseiextract, or from a ferfilter "
      "upstream with draw=false, through scalers and converters), without analysing anything",
      "GstFER developers");
}

static void
gst_fer_overlay_init (GstFerOverlay * self)
{
  /* as ferfilter: every frame passes (GstVideoFilter's QoS would drop late ones whole) */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), FALSE);
}

gboolean
gstferoverlay_register (GstPlugin * plugin)
{
  if (!gst_fer_overlay_debug)
    GST_DEBUG_CATEGORY_INIT (gst_fer_overlay_debug, "feroverlay", 0, "draws the faces frames carry");
  return gst_element_register (plugin, "feroverlay", GST_RANK_NONE, gst_fer_overlay_get_type ());
}
