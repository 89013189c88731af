import XCTest
@testable import FERNet

/// The shipped model (Models/fernet.json) against its own model card, on the real PublicTest faces.
final class ShippedModelTests: XCTestCase {
    /// Loading the shipped files and classifying the 3,589 PublicTest faces gives the accuracy the
    /// card records, plain and with flip test-time augmentation (the card is what users read and
    /// what `fer train` is asked to reproduce, so it must be the model's real figure). Allowed
    /// slack: two faces, for float sums that differ between CPUs' BLAS kernels. It classifies with
    /// `predict(faces:flipTTA:)`, the inference plan ferfilter runs, not `evaluate` (the network's
    /// own forward, which made the card's figures), so it also checks that the two agree.
    func testShippedModelScoresWhatItsCardSays() throws {
        let url = packageRoot.appendingPathComponent("Models/fernet.json")
        let model = try FacialExpressionModel(contentsOf: url)
        let card = try XCTUnwrap(model.description.card, "the shipped model has a model card")
        let test = try SharedData.load().subset([.publicTest])
        XCTAssertEqual(test.count, 3589)
        let slack = 2.0 / Double(test.count)
        for flip in [false, true] {
            var confusion = Confusion(labels: model.labels)
            var start = 0
            while start < test.count {
                let end = min(test.count, start + 256)
                let probs = model.predict(faces: (start..<end).map { test.image($0) }, flipTTA: flip)
                for (i, p) in probs.enumerated() {
                    confusion.add(truth: Int(test.labels[start + i]), predicted: argmax(p[...]))
                }
                start = end
            }
            let recorded = flip ? try XCTUnwrap(card.accuracyFlipTTA, "the card records flip TTA") : card.accuracy
            XCTAssertEqual(confusion.accuracy, recorded, accuracy: slack, "PublicTest accuracy, flip TTA \(flip)")
        }
    }
}
