import Foundation

/// The step model's `context` input: the last `rows` encoded frames, oldest first.
///
/// Each row is stored twice, at slot i and slot i + rows, so the current `rows` rows are always one
/// contiguous block starting at the oldest row: a frame costs one row write (twice) and one memcpy into
/// the model input, with no shifting of the whole buffer.
public struct A2BSContextRing {
    public let rows: Int
    public let width: Int
    private var storage: [Float]
    /// Slot of the oldest row, which the next `append` overwrites.
    private var oldest = 0

    public init(rows: Int, width: Int, initialRow: [Float]) {
        precondition(rows > 0 && initialRow.count == width, "initial row must have \(width) values")
        self.rows = rows
        self.width = width
        storage = Array(repeating: 0, count: 2 * rows * width)
        reset(initialRow: initialRow)
    }

    /// Every row becomes `initialRow` (the manifest's initial_state.context_frame).
    public mutating func reset(initialRow: [Float]) {
        precondition(initialRow.count == width)
        let rows = self.rows, width = self.width  // locals: no access to self while storage is borrowed
        storage.withUnsafeMutableBufferPointer { dst in
            for slot in 0..<(2 * rows) {
                initialRow.withUnsafeBufferPointer { src in
                    (dst.baseAddress! + slot * width).update(from: src.baseAddress!, count: width)
                }
            }
        }
        oldest = 0
    }

    /// Drops the oldest row and appends `row` as the newest.
    public mutating func append(_ row: UnsafeBufferPointer<Float>) {
        precondition(row.count == width)
        let slot = oldest, rows = self.rows, width = self.width
        storage.withUnsafeMutableBufferPointer { dst in
            (dst.baseAddress! + slot * width).update(from: row.baseAddress!, count: width)
            (dst.baseAddress! + (slot + rows) * width).update(from: row.baseAddress!, count: width)
        }
        oldest = (oldest + 1) % rows
    }

    /// Writes the rows, oldest first, as rows * width contiguous floats.
    public func copy(into destination: UnsafeMutablePointer<Float>) {
        storage.withUnsafeBufferPointer { src in
            _ = memcpy(destination, src.baseAddress! + oldest * width, rows * width * MemoryLayout<Float>.stride)
        }
    }

    /// Row i (0 = oldest), for tests and debugging.
    public func row(_ i: Int) -> [Float] {
        let first = (oldest + i) * width
        return Array(storage[first..<(first + width)])
    }
}
