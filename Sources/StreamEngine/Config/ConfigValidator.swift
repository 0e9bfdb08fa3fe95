import Foundation

/// Walks the node tree, building specs and collecting every problem.
final class ConfigValidator {
    let file: String
    let registry: NameRegistry
    var diagnostics: [ConfigDiagnostic] = []
    /// Locations already reported (failed `${VAR}` substitutions): later problems there are
    /// consequences of the first one and are not reported again.
    var suppressed: Set<SourceLocation> = []

    /// Store name -> where it was first declared (pipelines' stores and global tables).
    var stores: [String: SourceLocation] = [:]
    var pipelineNames: [String: SourceLocation] = [:]
    /// `to` topics with their locations, checked against engine-owned topics at the end.
    var sinkTopics: [(topic: String, location: SourceLocation)] = []

    init(file: String, registry: NameRegistry) {
        self.file = file
        self.registry = registry
    }

    var sortedDiagnostics: [ConfigDiagnostic] {
        diagnostics.enumerated().sorted {
            ($0.element.line, $0.element.column, $0.offset) < ($1.element.line, $1.element.column, $1.offset)
        }.map(\.element)
    }

    func report(_ location: SourceLocation, _ message: String) {
        guard !suppressed.contains(location) else { return }
        diagnostics.append(ConfigDiagnostic(at: location, message: message))
    }
}
