/// A plain-text table with aligned columns: numbers right-aligned, text left-aligned.
struct TextTable {
    /// A column: its header and how its cells align.
    struct Column {
        var header: String
        var rightAligned: Bool

        init(_ header: String, rightAligned: Bool = false) {
            self.header = header
            self.rightAligned = rightAligned
        }
    }

    var columns: [Column]
    var rows: [[String]] = []

    init(_ columns: [Column]) { self.columns = columns }

    mutating func add(_ row: [String]) { rows.append(row) }

    /// The table as lines, columns separated by two spaces. With `maxWidth`
    /// (a terminal's width), the last column is shortened with `…` to fit.
    func render(indent: String = "", maxWidth: Int? = nil) -> String {
        var widths = columns.map { $0.header.count }
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, column) in columns.enumerated() {
                let cell = i < cells.count ? cells[i] : ""
                let isLast = i == columns.count - 1
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                if column.rightAligned {
                    parts.append(pad + cell)
                } else {
                    parts.append(isLast ? cell : cell + pad)
                }
            }
            var text = indent + parts.joined(separator: "  ")
            if let maxWidth, text.count > maxWidth, maxWidth > 1 {
                text = String(text.prefix(maxWidth - 1)) + "…"
            }
            return text
        }
        return ([line(columns.map(\.header))] + rows.map(line)).joined(separator: "\n")
    }
}
