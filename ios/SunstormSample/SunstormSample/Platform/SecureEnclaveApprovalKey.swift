import Foundation
import LocalAuthentication
import Security
import Sunstorm

/// The core's `ApprovalKey` in the Secure Enclave: a P-256 key that never leaves it, usable
/// only on this device with a passcode set, and only after a biometric check with the
/// biometrics enrolled when it was created (`.privateKeyUsage` + `.biometryCurrentSet`:
/// adding or removing a finger or face makes it unusable for good). The appliance checks
/// its signatures (docs/ios.md, "Approvals the appliance can verify"; ADR 0029).
///
/// The core calls `sign` on a worker thread; the system shows the Face ID / Touch ID sheet
/// with `prompt` and the call blocks until the user answers. Errors:
/// - cancelled (by the user, the app or the system): `ApprovalKeyError.Cancelled`;
/// - too many attempts: `.LockedOut`;
/// - biometrics changed (the key can no longer be used): `.KeyInvalidated`, and the key
///   is deleted so that `publicKey()` creates a new one for `enrolApprovalKey`;
/// - no biometrics enrolled or available: `.NoBiometrics`;
/// - anything else: `.Failed(reason:)`.
///
/// The key is a keychain item tagged `tag` in the app's keychain access group (the
/// `keychain-access-groups` entitlement; docs/ios.md).
final class SecureEnclaveApprovalKey: ApprovalKey, @unchecked Sendable {
    private let tag: Data
    private let prompt: String
    private let accessGroup: String?
    private let lock = NSLock()

    /// `accessGroup`: one of the `keychain-access-groups` entitlement's groups (nil: the
    /// first, the app's default).
    init(tag: String = "xyz.sigilvault.sunstorm.approval.p256", prompt: String = "Approve the request",
         accessGroup: String? = nil) {
        self.tag = Data(tag.utf8)
        self.prompt = prompt
        self.accessGroup = accessGroup
    }

    /// SEC1 `0x04 || x || y` (what `SecKeyCopyExternalRepresentation` gives for P-256);
    /// creates the key when there is none. Needs no biometric check.
    func publicKey() throws -> Data {
        lock.lock()
        defer { lock.unlock() }
        let key = try existingKey(context: nil) ?? createKey()
        guard let pub = SecKeyCopyPublicKey(key) else {
            throw ApprovalKeyError.Failed(reason: "the Secure Enclave key has no public key")
        }
        var error: Unmanaged<CFError>?
        guard let data = SecKeyCopyExternalRepresentation(pub, &error) as Data? else {
            throw ApprovalKeyError.Failed(reason: Self.text(error))
        }
        return data
    }

    func sign(message: Data) throws -> Data {
        if Thread.isMainThread {
            throw ApprovalKeyError.Failed(reason: "sign must not be called on the main thread")
        }
        let context = LAContext()
        context.localizedReason = prompt
        var laError: NSError?
        guard context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: &laError) else {
            throw Self.mapLA(laError)
        }
        lock.lock()
        let found: SecKey?
        do {
            found = try existingKey(context: context)
        } catch {
            lock.unlock()
            throw error
        }
        lock.unlock()
        // No key (never made, or deleted after a biometric change): a new one must be enrolled.
        guard let key = found else { throw ApprovalKeyError.KeyInvalidated }
        var error: Unmanaged<CFError>?
        // Blocks while the system shows the biometric sheet (the context carries the prompt).
        guard let signature = SecKeyCreateSignature(
            key, .ecdsaSignatureMessageX962SHA256, message as CFData, &error) as Data? else {
            throw signingError(error)
        }
        return signature // DER
    }

    // MARK: - Keychain

    private func existingKey(context: LAContext?) throws -> SecKey? {
        var query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecReturnRef as String: true,
        ]
        if let context { query[kSecUseAuthenticationContext as String] = context }
        if let accessGroup { query[kSecAttrAccessGroup as String] = accessGroup }
        var out: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &out)
        switch status {
        case errSecSuccess:
            guard let ref = out, CFGetTypeID(ref) == SecKeyGetTypeID() else {
                throw ApprovalKeyError.Failed(reason: "the keychain returned no key")
            }
            return (ref as! SecKey) // swiftlint:disable:this force_cast (type checked above)
        case errSecItemNotFound:
            return nil
        default:
            throw ApprovalKeyError.Failed(reason: Self.text(status))
        }
    }

    private func createKey() throws -> SecKey {
        let context = LAContext()
        var laError: NSError?
        guard context.canEvaluatePolicy(.deviceOwnerAuthenticationWithBiometrics, error: &laError) else {
            throw Self.mapLA(laError)
        }
        var error: Unmanaged<CFError>?
        guard let access = SecAccessControlCreateWithFlags(
            nil, kSecAttrAccessibleWhenPasscodeSetThisDeviceOnly, [.privateKeyUsage, .biometryCurrentSet], &error) else {
            throw ApprovalKeyError.Failed(reason: Self.text(error))
        }
        var privateAttributes: [String: Any] = [
            kSecAttrIsPermanent as String: true,
            kSecAttrApplicationTag as String: tag,
            kSecAttrAccessControl as String: access,
        ]
        if let accessGroup { privateAttributes[kSecAttrAccessGroup as String] = accessGroup }
        let attributes: [String: Any] = [
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
            kSecAttrKeySizeInBits as String: 256,
            kSecAttrTokenID as String: kSecAttrTokenIDSecureEnclave,
            kSecPrivateKeyAttrs as String: privateAttributes,
        ]
        guard let key = SecKeyCreateRandomKey(attributes as CFDictionary, &error) else {
            throw ApprovalKeyError.Failed(reason: Self.text(error))
        }
        return key
    }

    private func deleteKey() {
        var query: [String: Any] = [
            kSecClass as String: kSecClassKey,
            kSecAttrApplicationTag as String: tag,
            kSecAttrKeyType as String: kSecAttrKeyTypeECSECPrimeRandom,
        ]
        if let accessGroup { query[kSecAttrAccessGroup as String] = accessGroup }
        lock.lock()
        SecItemDelete(query as CFDictionary)
        lock.unlock()
    }

    // MARK: - Errors

    /// What a failed `SecKeyCreateSignature` means. A key whose biometric set changed fails
    /// with `errSecAuthFailed` / `LAError.invalidContext` after a successful match; it is
    /// deleted so that the next `publicKey()` creates a new one.
    private func signingError(_ error: Unmanaged<CFError>?) -> ApprovalKeyError {
        let cf = error?.takeRetainedValue()
        let ns = cf.map { $0 as Error as NSError }
        if let ns, ns.domain == LAError.errorDomain {
            return Self.mapLA(ns)
        }
        if let ns, ns.domain == NSOSStatusErrorDomain {
            switch OSStatus(ns.code) {
            case errSecUserCanceled:
                return .Cancelled
            case errSecAuthFailed, errSecItemNotFound:
                // The Secure Enclave refuses a key bound to a biometric set that changed.
                deleteKey()
                return .KeyInvalidated
            default:
                break
            }
        }
        return .Failed(reason: ns?.localizedDescription ?? "signing failed")
    }

    private static func mapLA(_ error: NSError?) -> ApprovalKeyError {
        guard let error, error.domain == LAError.errorDomain else {
            return .Failed(reason: error?.localizedDescription ?? "biometrics unavailable")
        }
        switch LAError.Code(rawValue: error.code) {
        case .userCancel, .appCancel, .systemCancel, .userFallback:
            return .Cancelled
        case .biometryLockout:
            return .LockedOut
        case .biometryNotEnrolled, .biometryNotAvailable, .passcodeNotSet:
            return .NoBiometrics
        default:
            return .Failed(reason: error.localizedDescription)
        }
    }

    private static func text(_ error: Unmanaged<CFError>?) -> String {
        error.map { ($0.takeRetainedValue() as Error).localizedDescription } ?? "Security framework error"
    }

    private static func text(_ status: OSStatus) -> String {
        SecCopyErrorMessageString(status, nil) as String? ?? "OSStatus \(status)"
    }
}
