import CGStreamer
import FaceAnalysis
import FERNet
import Foundation

/// feroverlay: draws the faces a frame carries, as ferfilter draws its own, without a model or
/// any analysis. The faces come from ferseiextract (read out of the stream; the metas stay on the
/// frames through the decoder) or from a ferfilter upstream with `draw=false`, through scalers and
/// converters (the boxes are the ROI metas', which a scaler moves with the picture; the emotions
/// are GstFerFacesMeta's where a copy dropped the ROI metas' params). So a stream can go out
/// clean with its emotions inside, and be annotated where it is watched; or be analysed small
/// and drawn on after scaling up.
final class FerOverlay {
    let element: UnsafeMutablePointer<GstFerOverlay>
    private let lock = NSLock()
    private var drawProbabilities = false

    init(element: UnsafeMutablePointer<GstFerOverlay>) { self.element = element }

    static let drawProbabilitiesID: guint = 1

    static func installProperties(_ klass: UnsafeMutablePointer<GObjectClass>) {
        g_object_class_install_property(klass, drawProbabilitiesID, g_param_spec_boolean(
            "draw-probabilities", "draw-probabilities", "Draw a bar per emotion beside each face, as ferfilter's draw-probabilities",
            0, gstfer_param_flags()))
    }

    func setProperty(_ id: guint, _ v: UnsafePointer<GValue>) {
        guard id == FerOverlay.drawProbabilitiesID else { return }
        lock.lock(); drawProbabilities = g_value_get_boolean(v) != 0; lock.unlock()
    }

    func getProperty(_ id: guint, _ v: UnsafeMutablePointer<GValue>) {
        guard id == FerOverlay.drawProbabilitiesID else { return }
        lock.lock(); g_value_set_boolean(v, drawProbabilities ? 1 : 0); lock.unlock()
    }

    func transform(_ frame: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn {
        lock.lock(); let probabilities = drawProbabilities; lock.unlock()
        guard let view = FrameView(frame), let faces = FaceMeta.read(from: frame.pointee.buffer), !faces.isEmpty else { return GST_FLOW_OK }
        FaceDrawing.draw(faces, on: view, labels: fer2013Labels, probabilities: probabilities)
        return GST_FLOW_OK
    }
}

// MARK: the Swift ends of CGStreamer's trampolines for feroverlay

@inline(__always) private func overlay(_ p: UnsafeMutableRawPointer?) -> FerOverlay {
    Unmanaged<FerOverlay>.fromOpaque(p!).takeUnretainedValue()
}

@_cdecl("gstferoverlay_impl_new")
public func gstferoverlay_impl_new(_ element: UnsafeMutablePointer<GstFerOverlay>?) -> UnsafeMutableRawPointer? {
    Unmanaged.passRetained(FerOverlay(element: element!)).toOpaque()
}

@_cdecl("gstferoverlay_impl_free")
public func gstferoverlay_impl_free(_ impl: UnsafeMutableRawPointer?) {
    Unmanaged<FerOverlay>.fromOpaque(impl!).release()
}

@_cdecl("gstferoverlay_impl_install_properties")
public func gstferoverlay_impl_install_properties(_ klass: UnsafeMutablePointer<GObjectClass>?) {
    FerOverlay.installProperties(klass!)
}

@_cdecl("gstferoverlay_impl_set_property")
public func gstferoverlay_impl_set_property(_ impl: UnsafeMutableRawPointer?, _ id: guint, _ value: UnsafePointer<GValue>?) {
    if let value { overlay(impl).setProperty(id, value) }
}

@_cdecl("gstferoverlay_impl_get_property")
public func gstferoverlay_impl_get_property(_ impl: UnsafeMutableRawPointer?, _ id: guint, _ value: UnsafeMutablePointer<GValue>?) {
    if let value { overlay(impl).getProperty(id, value) }
}

@_cdecl("gstferoverlay_impl_transform_ip")
public func gstferoverlay_impl_transform_ip(_ impl: UnsafeMutableRawPointer?, _ frame: UnsafeMutablePointer<GstVideoFrame>?) -> GstFlowReturn {
    guard let frame else { return GST_FLOW_ERROR }
    return overlay(impl).transform(frame)
}
