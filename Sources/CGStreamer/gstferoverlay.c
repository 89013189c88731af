/* GObject glue for feroverlay: a GstVideoFilter that draws the faces its frames carry, with its
 * vfunc and property trampolines into Swift. No behaviour lives here; see
 * Sources/GstFER/FerOverlay.swift. */
#include "CGStreamer.h"

GST_DEBUG_CATEGORY_STATIC (gst_fer_overlay_debug);
#define GST_CAT_DEFAULT gst_fer_overlay_debug

G_DEFINE_TYPE (GstFerOverlay, gst_fer_overlay, GST_TYPE_VIDEO_FILTER);

static void
gst_fer_overlay_set_property (GObject * object, guint id, const GValue * value, GParamSpec * pspec)
{
  gstferoverlay_impl_set_property (((GstFerOverlay *) object)->impl, id, value);
}

static void
gst_fer_overlay_get_property (GObject * object, guint id, GValue * value, GParamSpec * pspec)
{
  gstferoverlay_impl_get_property (((GstFerOverlay *) object)->impl, id, value);
}

static void
gst_fer_overlay_finalize (GObject * object)
{
  GstFerOverlay *self = (GstFerOverlay *) object;
  if (self->impl) {
    gstferoverlay_impl_free (self->impl);
    self->impl = NULL;
  }
  G_OBJECT_CLASS (gst_fer_overlay_parent_class)->finalize (object);
}

static GstFlowReturn
gst_fer_overlay_transform_frame_ip (GstVideoFilter * filter, GstVideoFrame * frame)
{
  return gstferoverlay_impl_transform_ip (((GstFerOverlay *) filter)->impl, frame);
}

static void
gst_fer_overlay_class_init (GstFerOverlayClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
  GstCaps *caps = gst_caps_from_string (GST_VIDEO_CAPS_MAKE (GSTFER_FORMATS));

  gobject_class->set_property = gst_fer_overlay_set_property;
  gobject_class->get_property = gst_fer_overlay_get_property;
  gobject_class->finalize = gst_fer_overlay_finalize;
  gstferoverlay_impl_install_properties (gobject_class);
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
  GST_BASE_TRANSFORM_CLASS (klass)->passthrough_on_same_caps = FALSE;
  filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR (gst_fer_overlay_transform_frame_ip);
}

static void
gst_fer_overlay_init (GstFerOverlay * self)
{
  self->impl = gstferoverlay_impl_new (self);
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
