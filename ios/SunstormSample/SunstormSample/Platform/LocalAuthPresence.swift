import Foundation
import LocalAuthentication
import Sunstorm

/// The core's `UserPresence` on LocalAuthentication: Face ID / Touch ID with the passcode
/// as fallback. The core calls `verify` on a worker thread and waits for the answer; the
/// system prompt shows `reason`.
final class LocalAuthPresence: UserPresence, @unchecked Sendable {
    func verify(reason: String) throws -> Bool {
        if Thread.isMainThread {
            throw UserPresenceError.Failed(reason: "verify must not be called on the main thread")
        }
        let context = LAContext()
        var error: NSError?
        guard context.canEvaluatePolicy(.deviceOwnerAuthentication, error: &error) else {
            throw UserPresenceError.Unavailable(reason: error?.localizedDescription ?? "no passcode or biometrics set")
        }
        let done = DispatchSemaphore(value: 0)
        let answer = Answer()
        context.evaluatePolicy(.deviceOwnerAuthentication, localizedReason: reason) { ok, _ in
            answer.set(ok) // cancelled or failed: false
            done.signal()
        }
        if done.wait(timeout: .now() + .seconds(120)) == .timedOut {
            context.invalidate()
            return false
        }
        return answer.get()
    }

    private final class Answer: @unchecked Sendable {
        private let lock = NSLock()
        private var value = false
        func set(_ v: Bool) { lock.lock(); value = v; lock.unlock() }
        func get() -> Bool { lock.lock(); defer { lock.unlock() }; return value }
    }
}
