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
final class FerOverlay: ElementImpl {
    let element: UnsafeMutablePointer<GstFerOverlay>
    /// `draw-probabilities`, shared with the application thread.
    private let drawProbabilities = Locked(false)

    init(element: UnsafeMutablePointer<GstFerOverlay>) { self.element = element }

    static let drawProbabilitiesID: guint = 1

    static func installProperties(_ klass: UnsafeMutablePointer<GObjectClass>) {
        g_object_class_install_property(klass, drawProbabilitiesID, g_param_spec_boolean(
            "draw-probabilities", "draw-probabilities", "Draw a bar per emotion beside each face, as ferfilter's draw-probabilities",
            0, gstfer_param_flags()))
    }

    func setProperty(_ id: guint, _ v: UnsafePointer<GValue>) -> Bool {
        guard id == FerOverlay.drawProbabilitiesID else { return false }
        drawProbabilities.withLock { $0 = g_value_get_boolean(v) != 0 }
        return true
    }

    func getProperty(_ id: guint, _ v: UnsafeMutablePointer<GValue>) -> Bool {
        guard id == FerOverlay.drawProbabilitiesID else { return false }
        g_value_set_boolean(v, drawProbabilities.withLock { $0 } ? 1 : 0)
        return true
    }

    func transform(frame: UnsafeMutablePointer<GstVideoFrame>) -> GstFlowReturn {
        let probabilities = drawProbabilities.withLock { $0 }
        guard let view = FrameView(frame), let faces = FaceMeta.read(from: frame.pointee.buffer), !faces.isEmpty else { return GST_FLOW_OK }
        FaceDrawing.draw(faces, on: view, labels: fer2013Labels, probabilities: probabilities)
        return GST_FLOW_OK
    }
}
