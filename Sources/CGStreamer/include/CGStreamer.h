/* CGStreamer: the C side of GstFER, and only glue.
 *
 * - the GObject types of the four elements and the plugin descriptor,
 * - one set of trampolines from their vfuncs and property accessors into Swift (gstferelement.c
 *   into the gstfer_impl_* functions, implemented in Sources/GstFER/Bridge.swift with @_cdecl),
 * - wrappers for GStreamer/GLib macros and variadic functions Swift cannot import.
 *
 * All behaviour lives in Swift. */
#ifndef CGSTREAMER_H
#define CGSTREAMER_H

#include <gst/gst.h>
#include <gst/video/video.h>
#include <gst/video/gstvideofilter.h>
#include <gst/video/gstvideometa.h>
#include <gst/base/gstbasetransform.h>

G_BEGIN_DECLS

typedef struct _GstFerFilter {
  GstVideoFilter parent;
  gpointer impl;              /* the Swift FerFilter, retained */
} GstFerFilter;

typedef struct _GstFerFilterClass {
  GstVideoFilterClass parent_class;
} GstFerFilterClass;

GType gst_fer_filter_get_type (void);

/* The raw formats ferfilter and feroverlay read and draw in place. */
#define GSTFER_FORMATS "{ RGB, BGR, RGBx, BGRx, xRGB, xBGR, RGBA, BGRA, ARGB, ABGR, I420, YV12, NV12, NV21, YUY2, UYVY, GRAY8, I420_10LE, P010_10LE, v210 }"

/* feroverlay: a GstVideoFilter drawing the faces its frames carry. */
typedef struct _GstFerOverlay {
  GstVideoFilter parent;
  gpointer impl;              /* the Swift FerOverlay, retained */
} GstFerOverlay;

typedef struct _GstFerOverlayClass {
  GstVideoFilterClass parent_class;
} GstFerOverlayClass;

GType gst_fer_overlay_get_type (void);

/* ferseiinsert and ferseiextract: in-place filters over H.264/H.265 access units that write the
 * faces of ferfilter's ROI metas into the stream as SEI, and read them back. One instance
 * struct for both; the class says which. */
typedef struct _GstFerSei {
  GstBaseTransform parent;
  gpointer impl;              /* the Swift FerSei, retained */
} GstFerSei;

typedef struct _GstFerSeiClass {
  GstBaseTransformClass parent_class;
  gboolean insert;            /* TRUE: ferseiinsert, FALSE: ferseiextract */
} GstFerSeiClass;

GType gst_fer_sei_get_type (void);
GType gst_fer_sei_insert_get_type (void);
GType gst_fer_sei_extract_get_type (void);

/* The four elements, as the Swift side knows them. */
typedef enum {
  GSTFER_KIND_FILTER,         /* ferfilter (GstVideoFilter) */
  GSTFER_KIND_OVERLAY,        /* feroverlay (GstVideoFilter) */
  GSTFER_KIND_SEI_INSERT,     /* ferseiinsert (GstBaseTransform over access units) */
  GSTFER_KIND_SEI_EXTRACT     /* ferseiextract (GstBaseTransform over access units) */
} GstFerElementKind;

/* Sets up a class of `kind` (from its class_init): property accessors, construction and
 * finalisation of the Swift side, GstBaseTransform's vfuncs and, for the video elements,
 * GstVideoFilter's, all as trampolines into the gstfer_impl_* functions below; then installs
 * the kind's properties. gstferelement.c. */
void gstfer_class_init_glue (gpointer klass, GstFerElementKind kind);

/* ---- implemented in Swift (Sources/GstFER/Bridge.swift), one set for every element ---- */
gpointer gstfer_impl_new (GstFerElementKind kind, gpointer element);
void gstfer_impl_free (gpointer impl);
void gstfer_impl_install_properties (GstFerElementKind kind, GObjectClass * klass);
/* FALSE: no property of that id (the C side then warns, as GObject expects) */
gboolean gstfer_impl_set_property (gpointer impl, guint id, const GValue * value);
gboolean gstfer_impl_get_property (gpointer impl, guint id, GValue * value);
gboolean gstfer_impl_start (gpointer impl);
gboolean gstfer_impl_stop (gpointer impl);
gboolean gstfer_impl_set_info (gpointer impl, GstVideoInfo * info);
gboolean gstfer_impl_set_caps (gpointer impl, GstCaps * caps);
GstFlowReturn gstfer_impl_transform_frame (gpointer impl, GstVideoFrame * frame);
GstFlowReturn gstfer_impl_transform_buffer (gpointer impl, GstBuffer * buffer);
void gstfer_impl_src_event (gpointer impl, GstEvent * event);
void gstfer_impl_sink_event (gpointer impl, GstEvent * event);
gboolean gstfer_impl_query (gpointer impl, GstPadDirection direction, GstQuery * query, gboolean handled);

/* ---- wrappers for what Swift cannot import ---- */
/* Registers ferfilter, ferseiinsert, ferseiextract and feroverlay in the given plugin, or statically
 * (plugin NULL) for in-process tests. */
gboolean gstfer_register (GstPlugin * plugin);
gboolean gstfersei_register (GstPlugin * plugin);
gboolean gstferoverlay_register (GstPlugin * plugin);
/* The flags every property uses: readable, writable, mutable in PLAYING (strings copied). */
GParamFlags gstfer_param_flags (void);
GType gstfer_message_mode_get_type (void);
GType gstfer_detector_get_type (void);
GType gstfer_type_string (void);
GType gstfer_type_int (void);
GType gstfer_type_uint (void);
GType gstfer_type_double (void);
GType gstfer_type_boolean (void);
/* Which GST_ELEMENT_ERROR ferfilter posts (all in GST_RESOURCE_ERROR). */
typedef enum {
  GSTFER_ERROR_NOT_FOUND,     /* a file that is not there (model, cascade) */
  GSTFER_ERROR_OPEN_READ,     /* a file that is there but cannot be read or is damaged */
  GSTFER_ERROR_SETTINGS       /* a setting that cannot be honoured (results file not writable) */
} GstFerErrorKind;
void gstfer_element_error (GstFerFilter * self, GstFerErrorKind kind, const char * text, const char * debug);
void gstfer_element_warning (GstFerFilter * self, const char * text, const char * debug);
void gstfer_log (GstFerFilter * self, GstDebugLevel level, const char * message);
/* whether ferfilter's debug category logs at `level` (build no message otherwise) */
gboolean gstfer_log_enabled (GstDebugLevel level);
/* the file libgstfer.so (or the binary holding GstFER) was loaded from, or NULL */
const char * gstfer_library_path (void);
GstSegment * gstfer_segment (GstFerFilter * self);
GstPad * gstfer_sink_pad (GstFerFilter * self);
GstClockTime gstfer_buffer_pts (GstBuffer * buffer);
GstClockTime gstfer_buffer_duration (GstBuffer * buffer);
/* the buffer's SMPTE time code (GstVideoTimeCodeMeta: timecodestamper, SDI capture), or NULL if
 * it has none (gst_buffer_get_video_time_code_meta is a macro) */
GstVideoTimeCode * gstfer_buffer_time_code (GstBuffer * buffer);
/* GValue holders (G_VALUE_INIT is a macro) */
GValue * gstfer_value_new (GType type);
void gstfer_value_free (GValue * v);
/* gst_structure_set is variadic */
void gstfer_structure_set_string (GstStructure * s, const char * field, const char * value);
void gstfer_structure_set_int (GstStructure * s, const char * field, gint value);
void gstfer_structure_set_uint (GstStructure * s, const char * field, guint value);
void gstfer_structure_set_uint64 (GstStructure * s, const char * field, guint64 value);
void gstfer_structure_set_clock_time (GstStructure * s, const char * field, GstClockTime value);
void gstfer_structure_set_double (GstStructure * s, const char * field, gdouble value);
void gstfer_structure_set_boolean (GstStructure * s, const char * field, gboolean value);
/* a read-only property (the `stats` structure) */
GParamFlags gstfer_param_flags_read_only (void);
/* a property read when the element starts: settable up to READY (GST_PARAM_MUTABLE_READY) */
GParamFlags gstfer_param_flags_at_start (void);
/* an ordered array of doubles (GST_TYPE_ARRAY) */
void gstfer_structure_set_double_array (GstStructure * s, const char * field, const gdouble * values, guint n);
/* appends `item` (taking ownership) to the GstValueList field, creating it if needed */
void gstfer_structure_append_structure (GstStructure * s, const char * field, GstStructure * item);
gboolean gstfer_post_element_message (GstFerFilter * self, GstStructure * structure);
/* readers, for tests and consumers written in Swift */
gboolean gstfer_structure_get_double_array (const GstStructure * s, const char * field, gdouble * out, guint max, guint * n);
guint gstfer_structure_list_size (const GstStructure * s, const char * field);
const GstStructure * gstfer_structure_list_get (const GstStructure * s, const char * field, guint i);
GstVideoRegionOfInterestMeta * gstfer_buffer_iterate_roi (GstBuffer * buffer, gpointer * state);
/* ferseiinsert/ferseiextract: their debug category "fersei", messages, segment */
void gstfersei_log (GstFerSei * self, GstDebugLevel level, const char * message);
gboolean gstfersei_log_enabled (GstDebugLevel level);
void gstfersei_element_warning (GstFerSei * self, const char * text, const char * debug);
/* GST_ELEMENT_ERROR: a file that cannot be written (results) */
void gstfersei_element_error (GstFerSei * self, const char * text, const char * debug);
gboolean gstfersei_post_element_message (GstFerSei * self, GstStructure * structure);
GstSegment * gstfersei_segment (GstFerSei * self);
/* "GstFerFacesMeta": a custom meta (a GstStructure, no tags) beside ferfilter's ROI metas holding
 * every face with its emotion. GStreamer 1.22 copies a ROI meta without its params (the
 * "emotion" structure) through converters and encoders; a tagless custom meta is copied whole. */
#define GSTFER_FACES_META "GstFerFacesMeta"
const GstMetaInfo * gstfer_faces_meta_info (void);
/* the GstBuffer a structure field holds (codec_data), not a new reference; NULL if none */
GstBuffer * gstfer_structure_get_buffer (const GstStructure * s, const char * field);

G_END_DECLS

#endif
