/* ferseiinsert and ferseiextract: an abstract in-place GstBaseTransform over H.264/H.265 access
 * units with two concrete subclasses (their trampolines are gstferelement.c's), and wrappers for
 * macros. No behaviour lives here; see Sources/GstFER/FerSei.swift. */
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
gst_fer_sei_class_init (GstFerSeiClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstCaps *caps = gst_caps_from_string (FER_SEI_CAPS);

  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
}

static void
gst_fer_sei_init (GstFerSei * self)
{
  gst_base_transform_set_in_place (GST_BASE_TRANSFORM (self), TRUE);
  gst_base_transform_set_passthrough (GST_BASE_TRANSFORM (self), FALSE);
}

static void
gst_fer_sei_insert_class_init (GstFerSeiClass * klass)
{
  klass->insert = TRUE;
  gstfer_class_init_glue (klass, GSTFER_KIND_SEI_INSERT);
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
  gstfer_class_init_glue (klass, GSTFER_KIND_SEI_EXTRACT);
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

gboolean
gstfersei_log_enabled (GstDebugLevel level)
{
#ifndef GST_DISABLE_GST_DEBUG
  return gst_debug_category_get_threshold (gst_fer_sei_debug) >= level;
#else
  return FALSE;
#endif
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
