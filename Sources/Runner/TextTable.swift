/// A plain-text table with aligned columns: numbers right-aligned, text left-aligned.
struct TextTable {
    /// A column: its header, how its cells align, and whether it may be shortened to fit a width.
    struct Column {
        var header: String
        var rightAligned: Bool
        /// Long cells (JSON values) are cut with `…` when the table must fit a terminal.
        var shrinkable: Bool

        init(_ header: String, rightAligned: Bool = false, shrinkable: Bool = false) {
            self.header = header
            self.rightAligned = rightAligned
            self.shrinkable = shrinkable
        }
    }

    var columns: [Column]
    var rows: [[String]] = []

    init(_ columns: [Column]) { self.columns = columns }

    mutating func add(_ row: [String]) { rows.append(row) }

    /// The table as lines, columns separated by two spaces.
    ///
    /// With `maxWidth` (a terminal's width), shrinkable columns share what the
    /// other columns leave, their cells cut with `…`; a line still too long is cut at the width.
    func render(indent: String = "", maxWidth: Int? = nil) -> String {
        var widths = columns.map { $0.header.count }
        for row in rows {
            for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) }
        }
        if let maxWidth {
            let total = indent.count + widths.reduce(0, +) + 2 * (columns.count - 1)
            let shrinkable = columns.indices.filter { columns[$0].shrinkable }
            if total > maxWidth, !shrinkable.isEmpty {
                let fixed = total - shrinkable.reduce(0) { $0 + widths[$1] }
                let share = max(8, (maxWidth - fixed) / shrinkable.count)
                for i in shrinkable { widths[i] = min(widths[i], max(share, columns[i].header.count)) }
            }
        }
        func fit(_ cell: String, _ width: Int) -> String {
            cell.count <= width ? cell : String(cell.prefix(max(0, width - 1))) + "…"
        }
        func line(_ cells: [String]) -> String {
            var parts: [String] = []
            for (i, column) in columns.enumerated() {
                let cell = fit(i < cells.count ? cells[i] : "", widths[i])
                let pad = String(repeating: " ", count: max(0, widths[i] - cell.count))
                if column.rightAligned {
                    parts.append(pad + cell)
                } else {
                    parts.append(i == columns.count - 1 ? cell : cell + pad)
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
