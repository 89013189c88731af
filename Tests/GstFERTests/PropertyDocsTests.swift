import CGStreamer
import Foundation
import XCTest

/// docs/element.md's property tables name every property each element has, and nothing else.
final class PropertyDocsTests: XCTestCase {
    func testTheTablesNameEveryProperty() throws {
        XCTAssertTrue(Gst.ready)
        let page = try String(contentsOf: packageRoot.appendingPathComponent("docs/element.md"), encoding: .utf8)
        for element in ["ferfilter", "ferseiinsert", "ferseiextract", "feroverlay"] {
            let e = try XCTUnwrap(gst_element_factory_make(element, nil), element)
            defer { gst_object_unref(UnsafeMutableRawPointer(e)) }
            var n: guint = 0
            let specs = g_object_class_list_properties(UnsafeMutableRawPointer(e.pointee.object.object.g_type_instance.g_class)
                                                           .assumingMemoryBound(to: GObjectClass.self), &n)!
            defer { g_free(specs) }
            let names = Set((0..<Int(n)).map { String(cString: g_param_spec_get_name(specs[$0]!)) }).subtracting(["name", "parent", "qos"])
            // the table under "### element": rows "| `name` | ..."
            let section = try XCTUnwrap(page.components(separatedBy: "### \(element)\n").dropFirst().first, "no section for \(element)")
                .components(separatedBy: "\n### ")[0]
            let documented = Set(section.components(separatedBy: "\n").compactMap { line -> String? in
                guard line.hasPrefix("| `") else { return nil }
                return line.dropFirst(3).components(separatedBy: "`").first
            })
            XCTAssertEqual(documented, names, "\(element): documented \(documented.subtracting(names).sorted()) that it lacks, "
                           + "lacks \(names.subtracting(documented).sorted()) (tools/element-properties.py writes the tables)")
        }
    }
}
