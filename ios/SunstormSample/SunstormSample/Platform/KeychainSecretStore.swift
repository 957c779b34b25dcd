import Foundation
import LocalAuthentication
import Security
import Sunstorm

/// The core's `SecretStore` on the Keychain: one generic-password item per name, readable
/// only on this device, only with a passcode set, and only after a biometric check with
/// the biometrics enrolled when the item was written (`kSecAccessControlBiometryCurrentSet`:
/// enrolling a new finger or face makes the keys unreadable, so the phone must re-bond).
///
/// One `LAContext` with a short reuse window is shared by the reads, so one Face ID check
/// unlocks the few key reads of one flow instead of prompting for each.
final class KeychainSecretStore: SecretStore, @unchecked Sendable {
    private let service: String
    private let lock = NSLock()
    private var context = LAContext()
    private var contextCreated = Date()
    private static let reuseSeconds: TimeInterval = 30

    init(service: String = "xyz.sigilvault.sunstorm.secrets") {
        self.service = service
    }

    func get(name: String) throws -> Data? {
        var query = baseQuery(name)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        query[kSecUseAuthenticationContext as String] = authContext()
        query[kSecUseOperationPrompt as String] = "Unlock your Sigil keys"
        var out: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &out)
        switch status {
        case errSecSuccess: return out as? Data
        case errSecItemNotFound: return nil
        default: throw Self.error(status)
        }
    }

    func put(name: String, value: Data) throws {
        // Items with biometric access control cannot be updated without a prompt: replace.
        try delete(name: name)
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, .biometryCurrentSet, &error) else {
            throw SecretStoreError.Failed(reason: "cannot create the access control")
        }
        var query = baseQuery(name)
        query[kSecValueData as String] = value
        query[kSecAttrAccessControl as String] = access
        query[kSecAttrSynchronizable as String] = false
        let status = SecItemAdd(query as CFDictionary, nil)
        guard status == errSecSuccess else { throw Self.error(status) }
    }

    func delete(name: String) throws {
        let status = SecItemDelete(baseQuery(name) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else { throw Self.error(status) }
    }

    private func baseQuery(_ name: String) -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword,
         kSecAttrService as String: service,
         kSecAttrAccount as String: name]
    }

    private func authContext() -> LAContext {
        lock.lock()
        defer { lock.unlock() }
        if Date().timeIntervalSince(contextCreated) > Self.reuseSeconds {
            context = LAContext()
            contextCreated = Date()
        }
        context.touchIDAuthenticationAllowableReuseDuration = Self.reuseSeconds
        return context
    }

    private static func error(_ status: OSStatus) -> SecretStoreError {
        let text = SecCopyErrorMessageString(status, nil) as String? ?? "OSStatus \(status)"
        switch status {
        case errSecUserCanceled, errSecAuthFailed, errSecInteractionNotAllowed, errSecNotAvailable:
            return .Unavailable(reason: text)
        default:
            return .Failed(reason: text)
        }
    }
}
