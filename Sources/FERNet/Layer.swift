/// One differentiable step of a network.
///
/// `forward` caches what `backward` needs when `training` is true; `backward` takes the gradient
/// of the loss with respect to the layer's output, **adds** the gradients of its parameters into
/// `Parameter.grad`, and returns the gradient with respect to its input.
public protocol Layer: AnyObject {
    /// Short type name used in architecture JSON (`conv2d`, `dense`, ...).
    var kind: String { get }
    var parameters: [Parameter] { get }
    var buffers: [Buffer] { get }
    func forward(_ x: Tensor, training: Bool) -> Tensor
    func backward(_ dy: Tensor) -> Tensor
}

public extension Layer {
    var parameters: [Parameter] { [] }
    var buffers: [Buffer] { [] }
}

/// Errors raised when a network is built from a description that cannot work.
public struct ShapeError: Error, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
}
