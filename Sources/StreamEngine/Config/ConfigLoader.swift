import Foundation
import Yams

/// Loads and validates `topologies.yaml`.
///
/// Every problem in the file is reported, each with file, line and column, in one
/// ``ConfigErrors``; a configuration is returned only when there are none.
public enum ConfigLoader {
    /// Reads, parses and validates the file at `path`.
    ///
    /// - Parameters:
    ///   - path: the file; diagnostics name it exactly as given.
    ///   - registry: the aggregator and processor names `aggregator:` and `processor:` may use.
    ///   - environment: the variables for `${VAR}` / `${VAR:-default}` substitution.
    /// - Throws: ``ConfigErrors`` with every problem found.
    public static func load(
        path: String,
        registry: NameRegistry,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigErrors) -> StreamConfig {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigErrors(diagnostics: [
                ConfigDiagnostic(file: path, line: 0, column: 0,
                                 message: "cannot read the configuration file: \(error.localizedDescription); expected a readable UTF-8 YAML file"),
            ])
        }
        return try load(yaml: text, file: path, registry: registry, environment: environment)
    }

    /// Parses and validates YAML text.
    ///
    /// - Parameters:
    ///   - yaml: the contents of the file.
    ///   - file: the file name used in diagnostics and stored as ``StreamConfig/sourceFile``.
    ///   - registry: the aggregator and processor names `aggregator:` and `processor:` may use.
    ///   - environment: the variables for `${VAR}` / `${VAR:-default}` substitution.
    /// - Throws: ``ConfigErrors`` with every problem found.
    public static func load(
        yaml: String,
        file: String = "topologies.yaml",
        registry: NameRegistry,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws(ConfigErrors) -> StreamConfig {
        let root: Node
        do {
            guard let node = try Yams.compose(yaml: yaml) else {
                throw ConfigErrors(diagnostics: [
                    ConfigDiagnostic(file: file, line: 1, column: 1,
                                     message: "the file is empty; expected a map with 'application.id' and 'topologies'"),
                ])
            }
            root = node
        } catch let error as ConfigErrors {
            throw error
        } catch {
            throw ConfigErrors(diagnostics: [yamlDiagnostic(error, file: file, yaml: yaml)])
        }
        var builder = ConfigNodeBuilder(file: file, environment: environment)
        let tree = builder.build(root)
        let validator = ConfigValidator(file: file, registry: registry)
        validator.diagnostics = builder.diagnostics
        validator.suppressed = Set(builder.diagnostics.map(\.location))
        let config = validator.validate(root: tree)
        let diagnostics = validator.sortedDiagnostics
        if let config, diagnostics.isEmpty { return config }
        throw ConfigErrors(diagnostics: diagnostics.isEmpty
            ? [ConfigDiagnostic(file: file, line: 1, column: 1, message: "invalid configuration")]
            : diagnostics)
    }

    /// Turns a Yams error into a diagnostic with a position.
    static func yamlDiagnostic(_ error: any Error, file: String, yaml: String) -> ConfigDiagnostic {
        func context(_ c: YamlError.Context?) -> String {
            guard let c else { return "" }
            return " (\(c.text) at line \(c.mark.line), column \(c.mark.column))"
        }
        guard let yamlError = error as? YamlError else {
            return ConfigDiagnostic(file: file, line: 1, column: 1, message: "invalid YAML: \(error)")
        }
        switch yamlError {
        case .scanner(let c, let problem, let mark, _), .parser(let c, let problem, let mark, _),
             .composer(let c, let problem, let mark, _):
            return ConfigDiagnostic(file: file, line: mark.line, column: mark.column,
                                    message: "invalid YAML: \(problem)\(context(c))")
        case .reader(let problem, let offset, _, _):
            var line = 1, column = 1
            if let offset {
                for ch in yaml.prefix(offset) {
                    if ch == "\n" || ch == "\r\n" { line += 1; column = 1 } else { column += ch.unicodeScalars.count }
                }
            }
            return ConfigDiagnostic(file: file, line: line, column: column,
                                    message: "invalid YAML: \(problem); expected UTF-8 text without control characters")
        case .duplicatedKeysInMapping(let duplicates, let c):
            let keys = duplicates.map { "'\($0)'" }.joined(separator: ", ")
            return ConfigDiagnostic(file: file, line: c.mark.line, column: c.mark.column,
                                    message: "duplicate key \(keys) in a map; expected each key at most once")
        default:
            return ConfigDiagnostic(file: file, line: 1, column: 1, message: "invalid YAML: \(yamlError)")
        }
    }
}
