/* The glue every GstFER element shares: one set of trampolines from GObject's and
 * GstBaseTransform's vfuncs (and GstVideoFilter's for the video elements) into the Swift side,
 * whatever the element. Each element's own file adds only its type, pads and metadata, and calls
 * gstfer_class_init_glue from its class_init. No behaviour lives here; see Sources/GstFER. */
#include "CGStreamer.h"

/* The kind of element a GType is (stored + 1, so that 0 means "not one of ours"). */
static GQuark
kind_quark (void)
{
  static GQuark q = 0;
  if (!q)
    q = g_quark_from_static_string ("gstfer-element-kind");
  return q;
}

static gboolean
kind_is_video (GstFerElementKind kind)
{
  return kind == GSTFER_KIND_FILTER || kind == GSTFER_KIND_OVERLAY;
}

/* Where an instance keeps its Swift side: after its GstVideoFilter or GstBaseTransform parent. */
static gpointer *
impl_slot (gpointer object)
{
  if (GST_IS_VIDEO_FILTER (object))
    return &((GstFerFilter *) object)->impl;   /* GstFerOverlay has the same layout */
  return &((GstFerSei *) object)->impl;
}

#define IMPL(o) (*impl_slot (o))

/* The nearest ancestor class whose `member` is not `ours` (this glue may sit at two levels, as in
 * the SEI elements' abstract parent and its subclasses). */
#define PARENT_CLASS_WITH(klass, member, ours) \
  ({ gpointer _k = (klass); \
     while (_k && ((GstBaseTransformClass *) _k)->member == (ours)) _k = g_type_class_peek_parent (_k); \
     (GstBaseTransformClass *) _k; })

static void
glue_set_property (GObject * object, guint id, const GValue * value, GParamSpec * pspec)
{
  if (!gstfer_impl_set_property (IMPL (object), id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

static void
glue_get_property (GObject * object, guint id, GValue * value, GParamSpec * pspec)
{
  if (!gstfer_impl_get_property (IMPL (object), id, value))
    G_OBJECT_WARN_INVALID_PROPERTY_ID (object, id, pspec);
}

/* The Swift side is made here, where the instance's final type (so its kind) is known. */
static void
glue_constructed (GObject * object)
{
  GObjectClass *parent = G_OBJECT_GET_CLASS (object);
  GstFerElementKind kind =
      (GstFerElementKind) (GPOINTER_TO_INT (g_type_get_qdata (G_OBJECT_TYPE (object), kind_quark ())) - 1);
  IMPL (object) = gstfer_impl_new (kind, object);
  while (parent && parent->constructed == glue_constructed)
    parent = g_type_class_peek_parent (parent);
  if (parent && parent->constructed)
    parent->constructed (object);
}

static void
glue_finalize (GObject * object)
{
  GObjectClass *parent = G_OBJECT_GET_CLASS (object);
  if (IMPL (object)) {
    gstfer_impl_free (IMPL (object));
    IMPL (object) = NULL;
  }
  while (parent && parent->finalize == glue_finalize)
    parent = g_type_class_peek_parent (parent);
  parent->finalize (object);
}

static gboolean
glue_start (GstBaseTransform * trans)
{
  return gstfer_impl_start (IMPL (trans));
}

static gboolean
glue_stop (GstBaseTransform * trans)
{
  return gstfer_impl_stop (IMPL (trans));
}

/* Swift looks at the event (QoS) and the parent handles it as usual. */
static gboolean
glue_src_event (GstBaseTransform * trans, GstEvent * event)
{
  gstfer_impl_src_event (IMPL (trans), event);
  return PARENT_CLASS_WITH (G_OBJECT_GET_CLASS (trans), src_event, glue_src_event)->src_event (trans, event);
}

/* Swift looks at the event (EOS) and the parent handles it as usual. */
static gboolean
glue_sink_event (GstBaseTransform * trans, GstEvent * event)
{
  gstfer_impl_sink_event (IMPL (trans), event);
  return PARENT_CLASS_WITH (G_OBJECT_GET_CLASS (trans), sink_event, glue_sink_event)->sink_event (trans, event);
}

/* The parent answers; Swift may amend the answer (LATENCY). */
static gboolean
glue_query (GstBaseTransform * trans, GstPadDirection direction, GstQuery * query)
{
  gboolean handled = PARENT_CLASS_WITH (G_OBJECT_GET_CLASS (trans), query, glue_query)->query (trans, direction, query);
  return gstfer_impl_query (IMPL (trans), direction, query, handled);
}

static gboolean
glue_set_info (GstVideoFilter * filter, GstCaps * incaps, GstVideoInfo * in_info, GstCaps * outcaps, GstVideoInfo * out_info)
{
  return gstfer_impl_set_info (IMPL (filter), in_info);
}

static GstFlowReturn
glue_transform_frame_ip (GstVideoFilter * filter, GstVideoFrame * frame)
{
  return gstfer_impl_transform_frame (IMPL (filter), frame);
}

static gboolean
glue_set_caps (GstBaseTransform * trans, GstCaps * incaps, GstCaps * outcaps)
{
  return gstfer_impl_set_caps (IMPL (trans), incaps);
}

static GstFlowReturn
glue_transform_ip (GstBaseTransform * trans, GstBuffer * buffer)
{
  return gstfer_impl_transform_buffer (IMPL (trans), buffer);
}

void
gstfer_class_init_glue (gpointer klass, GstFerElementKind kind)
{
  GObjectClass *gobject_class = G_OBJECT_CLASS (klass);
  GstBaseTransformClass *trans_class = GST_BASE_TRANSFORM_CLASS (klass);

  g_type_set_qdata (G_TYPE_FROM_CLASS (klass), kind_quark (), GINT_TO_POINTER (kind + 1));
  /* GObject does not inherit set_property/get_property: each class that installs properties sets them. */
  gobject_class->set_property = glue_set_property;
  gobject_class->get_property = glue_get_property;
  gobject_class->constructed = glue_constructed;
  gobject_class->finalize = glue_finalize;
  gstfer_impl_install_properties (kind, gobject_class);

  trans_class->start = GST_DEBUG_FUNCPTR (glue_start);
  trans_class->stop = GST_DEBUG_FUNCPTR (glue_stop);
  trans_class->src_event = GST_DEBUG_FUNCPTR (glue_src_event);
  trans_class->sink_event = GST_DEBUG_FUNCPTR (glue_sink_event);
  trans_class->query = GST_DEBUG_FUNCPTR (glue_query);
  trans_class->passthrough_on_same_caps = FALSE;
  if (kind_is_video (kind)) {
    GstVideoFilterClass *filter_class = GST_VIDEO_FILTER_CLASS (klass);
    filter_class->set_info = GST_DEBUG_FUNCPTR (glue_set_info);
    filter_class->transform_frame_ip = GST_DEBUG_FUNCPTR (glue_transform_frame_ip);
  } else {
    trans_class->set_caps = GST_DEBUG_FUNCPTR (glue_set_caps);
    trans_class->transform_ip = GST_DEBUG_FUNCPTR (glue_transform_ip);
  }
}
