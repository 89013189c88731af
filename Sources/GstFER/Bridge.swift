import CGStreamer

/// What a GstFER element's Swift side answers. CGStreamer's one set of trampolines
/// (gstferelement.c) calls these for all four elements; each element implements what its base
/// class calls and leaves the rest to the defaults.
protocol ElementImpl: AnyObject {
    /// Property `id` set or read; false for an id the element does not have.
    func setProperty(_ id: guint, _ value: UnsafePointer<GValue>) -> Bool
    func getProperty(_ id: guint, _ value: UnsafeMutablePointer<GValue>) -> Bool
    func start() -> Bool
    func stop() -> Bool
    /// GstVideoFilter: the negotiated video format (video elements).
    func setInfo(_ info: UnsafeMutablePointer<GstVideoInfo>) -> Bool
    /// GstBaseTransform: the negotiated caps (the elements over access units).
    func setCaps(_ caps: UnsafeMutablePointer<GstCaps>) -> Bool
    func transform(frame: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn
    func transform(buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn
    /// Events are looked at; the base class then handles them as usual.
    func srcEvent(_ event: UnsafeMutablePointer<GstEvent>)
    func sinkEvent(_ event: UnsafeMutablePointer<GstEvent>)
    /// The base class's answer to a query (`handled`), which the element may amend.
    func query(_ direction: GstPadDirection, _ query: UnsafeMutablePointer<GstQuery>, handled: Bool) -> Bool
}

extension ElementImpl {
    func start() -> Bool { true }
    func stop() -> Bool { true }
    func setInfo(_ info: UnsafeMutablePointer<GstVideoInfo>) -> Bool { true }
    func setCaps(_ caps: UnsafeMutablePointer<GstCaps>) -> Bool { true }
    func transform(frame: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn { GST_FLOW_OK }
    func transform(buffer: UnsafeMutablePointer<GstBuffer>) -> GstFlowReturn { GST_FLOW_OK }
    func srcEvent(_ event: UnsafeMutablePointer<GstEvent>) {}
    func sinkEvent(_ event: UnsafeMutablePointer<GstEvent>) {}
    func query(_ direction: GstPadDirection, _ query: UnsafeMutablePointer<GstQuery>, handled: Bool) -> Bool { handled }
}

/// The retained object behind an element's `impl` pointer.
private final class ImplBox {
    let impl: ElementImpl
    init(_ impl: ElementImpl) { self.impl = impl }
}

@inline(__always) private func element(_ p: UnsafeMutableRawPointer?) -> ElementImpl {
    Unmanaged<ImplBox>.fromOpaque(p!).takeUnretainedValue().impl
}

// MARK: the Swift ends of CGStreamer's trampolines

@_cdecl("gstfer_impl_new")
public func gstfer_impl_new(_ kind: GstFerElementKind, _ object: gpointer?) -> UnsafeMutableRawPointer? {
    let impl: ElementImpl
    switch kind {
    case GSTFER_KIND_FILTER: impl = FerFilter(element: object!.assumingMemoryBound(to: GstFerFilter.self))
    case GSTFER_KIND_OVERLAY: impl = FerOverlay(element: object!.assumingMemoryBound(to: GstFerOverlay.self))
    default: impl = FerSei(element: object!.assumingMemoryBound(to: GstFerSei.self), inserts: kind == GSTFER_KIND_SEI_INSERT)
    }
    return Unmanaged.passRetained(ImplBox(impl)).toOpaque()
}

@_cdecl("gstfer_impl_free")
public func gstfer_impl_free(_ impl: UnsafeMutableRawPointer?) {
    Unmanaged<ImplBox>.fromOpaque(impl!).release()
}

@_cdecl("gstfer_impl_install_properties")
public func gstfer_impl_install_properties(_ kind: GstFerElementKind, _ klass: UnsafeMutablePointer<GObjectClass>?) {
    switch kind {
    case GSTFER_KIND_FILTER: FerFilterProperties.install(klass!)
    case GSTFER_KIND_OVERLAY: FerOverlay.installProperties(klass!)
    default: SeiProperty.install(klass!, insert: kind == GSTFER_KIND_SEI_INSERT)
    }
}

@_cdecl("gstfer_impl_set_property")
public func gstfer_impl_set_property(_ impl: UnsafeMutableRawPointer?, _ id: guint, _ value: UnsafePointer<GValue>?) -> gboolean {
    guard let value else { return 0 }
    return element(impl).setProperty(id, value) ? 1 : 0
}

@_cdecl("gstfer_impl_get_property")
public func gstfer_impl_get_property(_ impl: UnsafeMutableRawPointer?, _ id: guint, _ value: UnsafeMutablePointer<GValue>?) -> gboolean {
    guard let value else { return 0 }
    return element(impl).getProperty(id, value) ? 1 : 0
}

@_cdecl("gstfer_impl_start")
public func gstfer_impl_start(_ impl: UnsafeMutableRawPointer?) -> gboolean {
    element(impl).start() ? 1 : 0
}

@_cdecl("gstfer_impl_stop")
public func gstfer_impl_stop(_ impl: UnsafeMutableRawPointer?) -> gboolean {
    element(impl).stop() ? 1 : 0
}

@_cdecl("gstfer_impl_set_info")
public func gstfer_impl_set_info(_ impl: UnsafeMutableRawPointer?, _ info: UnsafeMutablePointer<GstVideoInfo>?) -> gboolean {
    guard let info else { return 0 }
    return element(impl).setInfo(info) ? 1 : 0
}

@_cdecl("gstfer_impl_set_caps")
public func gstfer_impl_set_caps(_ impl: UnsafeMutableRawPointer?, _ caps: UnsafeMutablePointer<GstCaps>?) -> gboolean {
    guard let caps else { return 0 }
    return element(impl).setCaps(caps) ? 1 : 0
}

@_cdecl("gstfer_impl_transform_frame")
public func gstfer_impl_transform_frame(_ impl: UnsafeMutableRawPointer?, _ frame: UnsafeMutablePointer<GstVideoFrame>?) -> GstFlowReturn {
    guard let frame else { return GST_FLOW_ERROR }
    return element(impl).transform(frame: frame)
}

@_cdecl("gstfer_impl_transform_buffer")
public func gstfer_impl_transform_buffer(_ impl: UnsafeMutableRawPointer?, _ buffer: UnsafeMutablePointer<GstBuffer>?) -> GstFlowReturn {
    guard let buffer else { return GST_FLOW_ERROR }
    return element(impl).transform(buffer: buffer)
}

@_cdecl("gstfer_impl_src_event")
public func gstfer_impl_src_event(_ impl: UnsafeMutableRawPointer?, _ event: UnsafeMutablePointer<GstEvent>?) {
    if let event { element(impl).srcEvent(event) }
}

@_cdecl("gstfer_impl_sink_event")
public func gstfer_impl_sink_event(_ impl: UnsafeMutableRawPointer?, _ event: UnsafeMutablePointer<GstEvent>?) {
    if let event { element(impl).sinkEvent(event) }
}

@_cdecl("gstfer_impl_query")
public func gstfer_impl_query(_ impl: UnsafeMutableRawPointer?, _ direction: GstPadDirection, _ query: UnsafeMutablePointer<GstQuery>?,
                              _ handled: gboolean) -> gboolean {
    guard let query else { return handled }
    return element(impl).query(direction, query, handled: handled != 0) ? 1 : 0
}

/// Registers ferfilter, ferseiinsert, ferseiextract and feroverlay in this process without loading
/// the plugin file (for tests and apps that link GstFER directly).
public func registerStatically() -> Bool {
    gstfer_register(nil) != 0 && gstfersei_register(nil) != 0 && gstferoverlay_register(nil) != 0
}
