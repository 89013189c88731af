import CGStreamer

// The Swift ends of CGStreamer's trampolines. Each takes the opaque `impl` pointer the C side
// stores in GstFerFilter and forwards to the FerFilter it stands for.

@inline(__always) private func filter(_ p: UnsafeMutableRawPointer?) -> FerFilter {
    Unmanaged<FerFilter>.fromOpaque(p!).takeUnretainedValue()
}

@_cdecl("gstfer_impl_new")
public func gstfer_impl_new(_ element: UnsafeMutablePointer<GstFerFilter>?) -> UnsafeMutableRawPointer? {
    Unmanaged.passRetained(FerFilter(element: element!)).toOpaque()
}

@_cdecl("gstfer_impl_free")
public func gstfer_impl_free(_ impl: UnsafeMutableRawPointer?) {
    Unmanaged<FerFilter>.fromOpaque(impl!).release()
}

@_cdecl("gstfer_impl_install_properties")
public func gstfer_impl_install_properties(_ klass: UnsafeMutablePointer<GObjectClass>?) {
    FerFilterProperties.install(klass!)
}

@_cdecl("gstfer_impl_set_property")
public func gstfer_impl_set_property(_ impl: UnsafeMutableRawPointer?, _ id: guint, _ value: UnsafePointer<GValue>?) -> gboolean {
    guard let value else { return 0 }
    return filter(impl).setProperty(id, value) ? 1 : 0
}

@_cdecl("gstfer_impl_get_property")
public func gstfer_impl_get_property(_ impl: UnsafeMutableRawPointer?, _ id: guint, _ value: UnsafeMutablePointer<GValue>?) -> gboolean {
    guard let value else { return 0 }
    return filter(impl).getProperty(id, value) ? 1 : 0
}

@_cdecl("gstfer_impl_start")
public func gstfer_impl_start(_ impl: UnsafeMutableRawPointer?) -> gboolean {
    filter(impl).start() ? 1 : 0
}

@_cdecl("gstfer_impl_stop")
public func gstfer_impl_stop(_ impl: UnsafeMutableRawPointer?) -> gboolean {
    filter(impl).stop() ? 1 : 0
}

@_cdecl("gstfer_impl_set_info")
public func gstfer_impl_set_info(_ impl: UnsafeMutableRawPointer?, _ info: UnsafeMutablePointer<GstVideoInfo>?) -> gboolean {
    filter(impl).setInfo(info!) ? 1 : 0
}

@_cdecl("gstfer_impl_transform_ip")
public func gstfer_impl_transform_ip(_ impl: UnsafeMutableRawPointer?, _ frame: UnsafeMutablePointer<GstVideoFrame>?) -> GstFlowReturn {
    filter(impl).transform(frame!)
}

@_cdecl("gstfer_impl_src_event")
public func gstfer_impl_src_event(_ impl: UnsafeMutableRawPointer?, _ event: UnsafeMutablePointer<GstEvent>?) {
    if let event { filter(impl).srcEvent(event) }
}

@_cdecl("gstfer_impl_sink_event")
public func gstfer_impl_sink_event(_ impl: UnsafeMutableRawPointer?, _ event: UnsafeMutablePointer<GstEvent>?) {
    if let event { filter(impl).sinkEvent(event) }
}

@_cdecl("gstfer_impl_query")
public func gstfer_impl_query(_ impl: UnsafeMutableRawPointer?, _ direction: GstPadDirection, _ query: UnsafeMutablePointer<GstQuery>?,
                              _ handled: gboolean) -> gboolean {
    guard let query else { return handled }
    return filter(impl).query(direction, query, handled: handled != 0) ? 1 : 0
}

/// Registers ferfilter, ferseiinsert, ferseiextract and feroverlay in this process without loading
/// the plugin file (for tests and apps that link GstFER directly).
public func registerStatically() -> Bool {
    gstfer_register(nil) != 0 && gstfersei_register(nil) != 0 && gstferoverlay_register(nil) != 0
}
