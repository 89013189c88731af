/* ferfilter's type, pads and metadata (its trampolines are gstferelement.c's, shared by all four
 * elements), the plugin descriptor, and wrappers for macros. No behaviour lives here; see
 * Sources/GstFER. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include "CGStreamer.h"

GST_DEBUG_CATEGORY_STATIC (gst_fer_filter_debug);
#define GST_CAT_DEFAULT gst_fer_filter_debug


G_DEFINE_TYPE (GstFerFilter, gst_fer_filter, GST_TYPE_VIDEO_FILTER);

static void
gst_fer_filter_class_init (GstFerFilterClass * klass)
{
  GstElementClass *element_class = GST_ELEMENT_CLASS (klass);
  GstCaps *caps = gst_caps_from_string (GST_VIDEO_CAPS_MAKE (GSTFER_FORMATS));

  gstfer_class_init_glue (klass, GSTFER_KIND_FILTER);
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
  gst_element_class_add_pad_template (element_class,
      gst_pad_template_new ("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
  gst_caps_unref (caps);
  gst_element_class_set_static_metadata (element_class,
      "Facial expression recognition", "Filter/Analyzer/Video",
      "Detects faces, classifies their expressions (angry, disgust, fear, happy, sad, surprise, "
      "neutral) with a CNN, draws boxes and labels, and attaches region-of-interest metadata "
      "and bus messages", "GstFER developers");
}

static void
gst_fer_filter_init (GstFerFilter * self)
{
  /* GstVideoFilter turns on GstBaseTransform's QoS, which drops late frames whole; ferfilter
   * reads QoS itself and passes every frame, skipping only the analysis of late ones. */
  gst_base_transform_set_qos_enabled (GST_BASE_TRANSFORM (self), FALSE);
}

gboolean
gstfer_register (GstPlugin * plugin)
{
  if (!gst_fer_filter_debug)
    GST_DEBUG_CATEGORY_INIT (gst_fer_filter_debug, "ferfilter", 0, "facial expression recognition");
  gstfer_faces_meta_info ();
  return gst_element_register (plugin, "ferfilter", GST_RANK_NONE, gst_fer_filter_get_type ());
}

static gboolean
plugin_init (GstPlugin * plugin)
{
#ifdef GSTFER_REQUIRE_AVX2
  /* plugin/meson-free-build.sh compiled the Swift code for AVX2 and FMA (this file is compiled
   * for any x86-64): on a CPU without them, refuse to load instead of dying on an instruction. */
  __builtin_cpu_init ();
  if (!__builtin_cpu_supports ("avx2") || !__builtin_cpu_supports ("fma")) {
    g_warning ("libgstfer.so was built for CPUs with AVX2 and FMA and this CPU lacks them: ferfilter is "
        "not available; rebuild it here with plugin/meson-free-build.sh (or --portable for any x86-64)");
    return FALSE;
  }
#endif
  return gstfer_register (plugin) && gstfersei_register (plugin) && gstferoverlay_register (plugin);
}

#define PACKAGE "gstfer"
GST_PLUGIN_DEFINE (GST_VERSION_MAJOR, GST_VERSION_MINOR, fer,
    "Facial expression recognition (GstFER)", plugin_init, "0.1.0", "MIT/X11", "GstFER",
    "https://gstfer.invalid/")

/* ---- wrappers ---- */

GParamFlags
gstfer_param_flags (void)
{
  /* no G_PARAM_STATIC_STRINGS: the names and blurbs come from Swift strings, which GLib must copy */
  return (GParamFlags) (G_PARAM_READWRITE | GST_PARAM_MUTABLE_PLAYING);
}

GParamFlags
gstfer_param_flags_read_only (void)
{
  return G_PARAM_READABLE;
}

GParamFlags
gstfer_param_flags_at_start (void)
{
  return (GParamFlags) (G_PARAM_READWRITE | GST_PARAM_MUTABLE_READY);
}

GType
gstfer_message_mode_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {0, "Post a message for every frame", "every-frame"},
    {1, "Post a message when the faces or their labels change", "on-change"},
    {2, "Post no messages", "none"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFerMessageMode", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType
gstfer_detector_get_type (void)
{
  static GType type = 0;
  static const GEnumValue values[] = {
    {0, "YuNet CNN: faces at any angle, with five landmarks", "yunet"},
    {1, "OpenCV Haar cascade: upright frontal faces", "haar"},
    {0, NULL, NULL}
  };
  if (g_once_init_enter (&type)) {
    GType t = g_enum_register_static ("GstFerDetector", values);
    g_once_init_leave (&type, t);
  }
  return type;
}

GType gstfer_type_string (void) { return G_TYPE_STRING; }
GType gstfer_type_int (void) { return G_TYPE_INT; }
GType gstfer_type_uint (void) { return G_TYPE_UINT; }
GType gstfer_type_double (void) { return G_TYPE_DOUBLE; }
GType gstfer_type_boolean (void) { return G_TYPE_BOOLEAN; }

void
gstfer_element_error (GstFerFilter * self, GstFerErrorKind kind, const char * text, const char * debug)
{
  switch (kind) {
    case GSTFER_ERROR_NOT_FOUND:
      GST_ELEMENT_ERROR (self, RESOURCE, NOT_FOUND, ("%s", text), ("%s", debug ? debug : ""));
      break;
    case GSTFER_ERROR_OPEN_READ:
      GST_ELEMENT_ERROR (self, RESOURCE, OPEN_READ, ("%s", text), ("%s", debug ? debug : ""));
      break;
    default:
      GST_ELEMENT_ERROR (self, RESOURCE, SETTINGS, ("%s", text), ("%s", debug ? debug : ""));
      break;
  }
}

void
gstfer_element_warning (GstFerFilter * self, const char * text, const char * debug)
{
  GST_ELEMENT_WARNING (self, RESOURCE, SETTINGS, ("%s", text), ("%s", debug ? debug : ""));
}

void
gstfer_log (GstFerFilter * self, GstDebugLevel level, const char * message)
{
  GST_CAT_LEVEL_LOG (gst_fer_filter_debug, level, self, "%s", message);
}

gboolean
gstfer_log_enabled (GstDebugLevel level)
{
#ifndef GST_DISABLE_GST_DEBUG
  return gst_debug_category_get_threshold (gst_fer_filter_debug) >= level;
#else
  return FALSE;
#endif
}

const char *
gstfer_library_path (void)
{
  Dl_info info;
  if (dladdr ((void *) gstfer_register, &info) && info.dli_fname)
    return info.dli_fname;
  return NULL;
}

GstSegment *
gstfer_segment (GstFerFilter * self)
{
  return &GST_BASE_TRANSFORM (self)->segment;
}

GstPad *
gstfer_sink_pad (GstFerFilter * self)
{
  return GST_BASE_TRANSFORM_SINK_PAD (self);
}

GstClockTime gstfer_buffer_pts (GstBuffer * buffer) { return GST_BUFFER_PTS (buffer); }
GstClockTime gstfer_buffer_duration (GstBuffer * buffer) { return GST_BUFFER_DURATION (buffer); }

GstVideoTimeCode *
gstfer_buffer_time_code (GstBuffer * buffer)
{
  GstVideoTimeCodeMeta *meta = gst_buffer_get_video_time_code_meta (buffer);
  return meta ? &meta->tc : NULL;
}

GValue *
gstfer_value_new (GType type)
{
  GValue *v = g_new0 (GValue, 1);
  g_value_init (v, type);
  return v;
}

void
gstfer_value_free (GValue * v)
{
  g_value_unset (v);
  g_free (v);
}

void gstfer_structure_set_string (GstStructure * s, const char * f, const char * v) { gst_structure_set (s, f, G_TYPE_STRING, v, NULL); }
void gstfer_structure_set_int (GstStructure * s, const char * f, gint v) { gst_structure_set (s, f, G_TYPE_INT, v, NULL); }
void gstfer_structure_set_uint (GstStructure * s, const char * f, guint v) { gst_structure_set (s, f, G_TYPE_UINT, v, NULL); }
void gstfer_structure_set_boolean (GstStructure * s, const char * f, gboolean v) { gst_structure_set (s, f, G_TYPE_BOOLEAN, v, NULL); }
void gstfer_structure_set_uint64 (GstStructure * s, const char * f, guint64 v) { gst_structure_set (s, f, G_TYPE_UINT64, v, NULL); }
void gstfer_structure_set_clock_time (GstStructure * s, const char * f, GstClockTime v) { gst_structure_set (s, f, GST_TYPE_CLOCK_TIME, v, NULL); }
void gstfer_structure_set_double (GstStructure * s, const char * f, gdouble v) { gst_structure_set (s, f, G_TYPE_DOUBLE, v, NULL); }

void
gstfer_structure_set_double_array (GstStructure * s, const char * field, const gdouble * values, guint n)
{
  GValue arr = G_VALUE_INIT, item = G_VALUE_INIT;
  guint i;
  gst_value_array_init (&arr, n);
  g_value_init (&item, G_TYPE_DOUBLE);
  for (i = 0; i < n; i++) {
    g_value_set_double (&item, values[i]);
    gst_value_array_append_value (&arr, &item);
  }
  g_value_unset (&item);
  gst_structure_take_value (s, field, &arr);
}

void
gstfer_structure_append_structure (GstStructure * s, const char * field, GstStructure * item)
{
  GValue v = G_VALUE_INIT;
  if (!gst_structure_has_field_typed (s, field, GST_TYPE_LIST)) {
    GValue list = G_VALUE_INIT;
    g_value_init (&list, GST_TYPE_LIST);
    gst_structure_take_value (s, field, &list);
  }
  g_value_init (&v, GST_TYPE_STRUCTURE);
  g_value_take_boxed (&v, item);
  gst_value_list_append_and_take_value ((GValue *) gst_structure_get_value (s, field), &v);
}

gboolean
gstfer_post_element_message (GstFerFilter * self, GstStructure * structure)
{
  return gst_element_post_message (GST_ELEMENT (self), gst_message_new_element (GST_OBJECT (self), structure));
}

gboolean
gstfer_structure_get_double_array (const GstStructure * s, const char * field, gdouble * out, guint max, guint * n)
{
  const GValue *arr = gst_structure_get_value (s, field);
  guint i, size;
  if (!arr || !GST_VALUE_HOLDS_ARRAY (arr))
    return FALSE;
  size = gst_value_array_get_size (arr);
  for (i = 0; i < size && i < max; i++) {
    const GValue *v = gst_value_array_get_value (arr, i);
    if (!G_VALUE_HOLDS_DOUBLE (v))
      return FALSE;
    out[i] = g_value_get_double (v);
  }
  *n = size;
  return TRUE;
}

guint
gstfer_structure_list_size (const GstStructure * s, const char * field)
{
  const GValue *l = gst_structure_get_value (s, field);
  return (l && GST_VALUE_HOLDS_LIST (l)) ? gst_value_list_get_size (l) : 0;
}

const GstStructure *
gstfer_structure_list_get (const GstStructure * s, const char * field, guint i)
{
  const GValue *l = gst_structure_get_value (s, field);
  if (!l || !GST_VALUE_HOLDS_LIST (l) || i >= gst_value_list_get_size (l))
    return NULL;
  return gst_value_get_structure (gst_value_list_get_value (l, i));
}

GstVideoRegionOfInterestMeta *
gstfer_buffer_iterate_roi (GstBuffer * buffer, gpointer * state)
{
  return (GstVideoRegionOfInterestMeta *) gst_buffer_iterate_meta_filtered (buffer, state,
      GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE);
}

GstBuffer *
gstfer_structure_get_buffer (const GstStructure * s, const char * field)
{
  const GValue *v = gst_structure_get_value (s, field);
  return (v && G_VALUE_HOLDS (v, GST_TYPE_BUFFER)) ? gst_value_get_buffer (v) : NULL;
}

const GstMetaInfo *
gstfer_faces_meta_info (void)
{
  static const GstMetaInfo *info = NULL;
  static const gchar *tags[] = { NULL };
  if (g_once_init_enter (&info)) {
    const GstMetaInfo *i = gst_meta_register_custom (GSTFER_FACES_META, tags, NULL, NULL, NULL);
    g_once_init_leave (&info, i);
  }
  return info;
}
