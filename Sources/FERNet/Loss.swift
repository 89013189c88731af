import Foundation

/// Softmax cross-entropy on logits [N, K] with integer targets and optional label smoothing,
/// matching `torch.nn.CrossEntropyLoss(label_smoothing: ε)` with mean reduction:
/// the target distribution is (1-ε)·onehot + ε/K.
public enum SoftmaxCrossEntropy {
    /// Returns the mean loss and the gradient with respect to the logits.
    public static func lossAndGradient(logits: [Float], labels: [Int], classes k: Int, smoothing: Float = 0)
        -> (loss: Float, grad: [Float]) {
        var targets = [Float](repeating: 0, count: labels.count * k)
        for (r, l) in labels.enumerated() { targets[r * k + l] = 1 }
        return lossAndGradient(logits: logits, targets: targets, classes: k, smoothing: smoothing)
    }

    /// The same with a target distribution per row ([N, K], rows summing to 1), as
    /// `torch.nn.functional.cross_entropy` with probability targets: the distribution used is
    /// (1-ε)·target + ε/K.
    public static func lossAndGradient(logits: [Float], targets: [Float], classes k: Int, smoothing: Float = 0)
        -> (loss: Float, grad: [Float]) {
        let n = targets.count / k
        precondition(logits.count == n * k && targets.count == n * k)
        var grad = [Float](repeating: 0, count: n * k)
        var total = 0.0
        for r in 0..<n {
            let row = r * k
            var mx = -Float.infinity
            for j in 0..<k { mx = max(mx, logits[row + j]) }
            var sum = 0.0
            for j in 0..<k { sum += exp(Double(logits[row + j] - mx)) }
            let logSum = log(sum) + Double(mx)
            for j in 0..<k {
                let logp = Double(logits[row + j]) - logSum
                let q = Double(smoothing) / Double(k) + Double(1 - smoothing) * Double(targets[row + j])
                total -= q * logp
                grad[row + j] = Float((exp(logp) - q) / Double(n))
            }
        }
        return (Float(total / Double(n)), grad)
    }

    /// Row-wise softmax of [N, K] logits.
    public static func softmax(_ logits: [Float], classes k: Int) -> [Float] {
        var out = [Float](repeating: 0, count: logits.count)
        for r in 0..<(logits.count / k) {
            let row = r * k
            var mx = -Float.infinity
            for j in 0..<k { mx = max(mx, logits[row + j]) }
            var sum: Float = 0
            for j in 0..<k { let e = expf(logits[row + j] - mx); out[row + j] = e; sum += e }
            for j in 0..<k { out[row + j] /= sum }
        }
        return out
    }
}
