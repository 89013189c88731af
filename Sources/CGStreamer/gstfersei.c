/* GObject glue for ferseiinsert and ferseiextract: an abstract in-place GstBaseTransform over
 * H.264/H.265 access units with two concrete subclasses, vfunc and property trampolines into
 * Swift, and wrappers for macros. No behaviour lives here; see Sources/GstFER/FerSei.swift. */
#include "CGStreamer.h"

GST_DEBUG_CATEGORY_STATIC (gst_fer_sei_debug);
#define GST_CAT_DEFAULT gst_fer_sei_debug

#define FER_SEI_CAPS \
  "video/x-h264, stream-format = (string) { byte-stream, avc, avc3 }, alignment = (string) au; " \
  "video/x-h265, stream-format = (string) { byte-stream, hvc1, hev1 }, alignment = (string) au"

G_DEFINE_ABSTRACT_TYPE (GstFerSei, gst_fer_sei, GST_TYPE_BASE_TRANSFORM);

typedef GstFerSei GstFerSeiInsert;
typedef GstFerSeiClass GstFerSeiInsertClass;
typedef GstFerSei GstFerSeiExtract;
typedef GstFerSeiClass GstFerSeiExtractClass;
G_DEFINE_TYPE (GstFerSeiInsert, gst_fer_sei_insert, gst_fer_sei_get_type ());
G_DEFINE_TYPE (GstFerSeiExtract, gst_fer_sei_extract, gst_fer_sei_get_type ());

static void
gst_fer_sei_set_property (GObject * object, guint id, const GValue * value, GParamSpec * pspec)
{
  gstfersei_impl_set_property (((GstFerSei *) object)->impl, id, value);
}

static void
gst_fer_sei_get_property (GObject * object, guint id, GValue * value, GParamSpec * pspec)
{
  gstfersei_impl_get_property (((GstFerSei *) object)->impl, id, value);
}

/* The Swift side is made here, where the instance's class (insert or extract) is known. */
static void
gst_fer_sei_constructed (GObject * object)
{
  GstFerSei *self = (GstFerSei *) object;
  self->impl = gstfersei_impl_new (self, ((GstFerSeiClass *) G_OBJECT_GET_CLASS (object))->insert);
  G_OBJECT_CLASS (gst_fer_sei_parent_class)->constructed (object);
}

static void
gst_fer_sei_finalize (GObject * object)
{
  GstFerSei *self = (GstFerSei *) object;
  if (self->impl) {
    gstfersei_impl_free (self->impl);
    self->impl = NULL;
  }
  G_OBJECT_CLASS (gst_fer_sei_parent_class)->finalize (object);
}

static gboolean
gst_fer_sei_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  return gstfersei_impl_set_caps (((GstFerSei *) trans)->impl, incaps);
}

static GstFlowReturn
gst_fer_sei_transform_ip (GstBaseTransform * trans, GstBuffer * buffer)
{
  return gstfersei_impl_transform_ip (((GstFerSei *) trans)->impl, buffer);
}

static gboolean
gst_fer_sei_start (GstBaseTransform * trans)
{
  return gstfersei_impl_start (((GstFerSei *) trans)->impl);
}

static gboolean
gst_fer_sei_stop (GstBaseTransform * trans)
{
  return gstfersei_impl_stop (((GstFerSei *) trans)->impl);
}

/* Swift looks at the event (EOS) and the parent handles it as usual. */
static gboolean
gst_fer_sei_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  gstfersei_impl_sink_event (((GstFerSei *) trans)->impl, event);
  return GST_BASE_TRANSFORM_CLASS (gst_fer_sei_parent_class)->sink_event (trans, event);
}

static void
gst_fer_sei_class_init (GstFerSeiClass * klass)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);
  GstCaps *caps = gst_caps_from_string (FER_SEI_CAPS);

  gobject_class->constructed = gst_fer_sei_constructed;
  gobject_class->finalize = gst_fer_sei_finalize;
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
  trans_class->start = GST_DEBUG_FUNCPTR (gst_fer_sei_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (gst_fer_sei_stop);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (gst_fer_sei_sink_event);
  trans_class->set_caps = GST_DEBUG_FUNCPTR (gst_fer_sei_set_caps);
  trans_class->transform_ip = GST_DEBUG_FUNCPTR (gst_fer_sei_transform_ip);
  trans_class->passthrough_on_same_caps = FALSE;
}

static void
gst_fer_sei_init (GstFerSei * self)
{
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
}

/* GObject does not inherit set_property/get_property: each class that installs properties sets them. */
static void
install_properties (GstFerSeiClass * klass, gboolean insert)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  gobject_class->set_property = gst_fer_sei_set_property;
  gobject_class->get_property = gst_fer_sei_get_property;
  gstfersei_impl_install_properties (gobject_class, insert);
}

static void
gst_fer_sei_insert_class_init (GstFerSeiClass * klass)
{
  klass->insert = TRUE;
  install_properties (klass, TRUE);
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "Emotion metadata to SEI", "Codec/Video/Metadata",
      "Writes the faces and emotions of ferfilter's region-of-interest metas into each H.264/H.265 "
      "access unit as a SEI user-data-unregistered message, so they travel with the video "
      "(files, RTP, RTSP, MPEG-TS)", "GstFER developers");
}

static void
gst_fer_sei_insert_init (GstFerSei * self)
{
}

static void
gst_fer_sei_extract_class_init (GstFerSeiClass * klass)
{
  klass->insert = FALSE;
  install_properties (klass, FALSE);
  gst_element_class_set_static_metadata (GST_ELEMENT_CLASS (klass),
      "Emotion metadata from SEI", "Codec/Video/Metadata",
      "Reads the faces and emotions ferseiinsert wrote into H.264/H.265 access units: attaches "
      "region-of-interest metas and posts ferfilter's bus message", "GstFER developers");
}

static void
gst_fer_sei_extract_init (GstFerSei * self)
{
}

gboolean
gstfersei_register (GstPlugin * plugin)
{
  if (!gst_fer_sei_debug)
    GST_DEBUG_CATEGORY_INIT (gst_fer_sei_debug, "fersei", 0, "emotion metadata in H.264/H.265 SEI");
  return gst_element_register (plugin, "ferseiinsert", GST_RANK_NONE, gst_fer_sei_insert_get_type ())
      && gst_element_register (plugin, "ferseiextract", GST_RANK_NONE, gst_fer_sei_extract_get_type ());
}

/* ---- wrappers ---- */

void
gstfersei_log (GstFerSei * self, GstDebugLevel level, const char * message)
{
  GST_CAT_LEVEL_LOG (gst_fer_sei_debug, level, self, "%s", message);
}

void
gstfersei_element_error (GstFerSei * self, const char * text, const char * debug)
{
  GST_ELEMENT_ERROR (self, RESOURCE, OPEN_WRITE, ("%s", text), ("%s", debug ? debug : ""));
}

void
gstfersei_element_warning (GstFerSei * self, const char * text, const char * debug)
{
  GST_ELEMENT_WARNING (self, STREAM, FORMAT, ("%s", text), ("%s", debug ? debug : ""));
}

gboolean
gstfersei_post_element_message (GstFerSei * self, GstStructure * structure)
{
  return gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), structure));
}

GstSegment *
gstfersei_segment (GstFerSei * self)
{
  return &GST_BASE_TRANSFORM (self)->segment;
}
