import Foundation
import os
import Sunstorm

/// The core's `LogSink` to the unified log: subsystem `xyz.sigilvault.sunstorm`, one
/// category per Rust target (`sunstorm_core::pair`…). Records carry no secrets (the core
/// guarantees it), so messages are public. `log stream --predicate 'subsystem == "xyz.sigilvault.sunstorm"'`.
final class OSLogSink: LogSink, @unchecked Sendable {
    private let subsystem: String
    private let lock = NSLock()
    private var loggers: [String: Logger] = [:]

    init(subsystem: String = "xyz.sigilvault.sunstorm") {
        self.subsystem = subsystem
    }

    func log(record: LogRecord) throws {
        let logger = self.logger(record.target)
        let type: OSLogType
        switch record.level {
        case .trace, .debug: type = .debug
        case .info: type = .info
        case .warn: type = .default
        case .error: type = .error
        }
        logger.log(level: type, "\(record.message, privacy: .public)")
    }

    private func logger(_ category: String) -> Logger {
        lock.lock()
        defer { lock.unlock() }
        if let l = loggers[category] { return l }
        let l = Logger(subsystem: subsystem, category: category)
        loggers[category] = l
        return l
    }
}
