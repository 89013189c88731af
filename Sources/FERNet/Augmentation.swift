import Foundation

/// The real-time augmentation of a training recipe (recorded in the model file): one random affine
/// warp (shift, rotation, scale, horizontal flip) with bilinear sampling, then brightness and
/// contrast jitter, then random erasing. Applying it is training code (FERTraining).
public struct Augmentation: Codable, Equatable, Sendable {
    public var maxShift: Float = 0.1          // fraction of the side
    public var maxRotation: Float = 10        // degrees
    public var scale: ClosedRange<Float> = 0.9...1.1
    public var flip = true
    public var brightness: Float = 0.2        // additive, ±
    public var contrast: Float = 0.2          // multiplicative about the mean, 1 ± this
    public var eraseProbability: Float = 0.25
    public var eraseArea: ClosedRange<Float> = 0.02...0.15

    public init() {}

    public static let none: Augmentation = {
        var a = Augmentation()
        a.maxShift = 0; a.maxRotation = 0; a.scale = 1...1; a.flip = false; a.brightness = 0; a.contrast = 0; a.eraseProbability = 0
        return a
    }()
}
