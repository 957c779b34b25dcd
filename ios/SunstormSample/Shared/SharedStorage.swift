import Foundation
import Security
import Sunstorm

/// What the app and its Notification Service Extension share (docs/ios.md, "Push"): the App
/// Group container holding the core's database, and the keychain access group holding the
/// push key. Compiled into both targets.
enum SharedStorage {
    /// The App Group both targets list in their entitlements.
    static let appGroup = "group.xyz.sigilvault.sunstorm.sample"

    /// The keychain access group both targets list (`$(AppIdentifierPrefix)` is prepended by
    /// the entitlement; at run time the full group is the team prefix plus this).
    static let keychainGroupSuffix = "xyz.sigilvault.sunstorm.shared"

    /// Octane's pinned key, the same in both processes (printed by `sunstorm sim octane`).
    static let octanePublicKeyHex = String(repeating: "0", count: 64)

    /// The pinned metadata key (the repository's development key, as the app's): the
    /// extension reads the app's metadata index under it, never the bundle file.
    static let metadataPublicKeyHex = "ebfe4619b374c565c8629e2a7f1cb1018e8c11578855d65f0df09d0dfa4a88ec"

    /// The core's SQLite file, in the App Group container (the app migrates and writes it;
    /// the extension opens it read-only). Falls back to Application Support without a group.
    static var databasePath: String {
        let fm = FileManager.default
        let dir = fm.containerURL(forSecurityApplicationGroupIdentifier: appGroup)
            ?? fm.urls(for: .applicationSupportDirectory, in: .userDomainMask)[0]
        try? fm.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.appendingPathComponent("sunstorm.db").path
    }
}

/// The core's `SecretStore` that keeps the **two secrets the extension needs** — the push
/// key and the metadata index key — in the shared keychain access group, readable after the
/// first unlock without a prompt (a notification extension cannot show Face ID), and passes
/// every other secret to `inner` (the app's biometric-gated `KeychainSecretStore`). The
/// extension is built with `inner: nil`: it can read those two and nothing else.
final class PushKeySharingSecretStore: SecretStore, @unchecked Sendable {
    /// The name the core stores the push key under (`core::push`, docs/push.md).
    static let pushKeyName = "push.x25519"
    /// The name the core stores the metadata index key under (`core::metadata::index`,
    /// docs/metadata.md): it authenticates the index rows the extension reads.
    static let metadataIndexKeyName = "metadata.index"
    /// The secrets kept in the shared group.
    static let sharedNames: Set<String> = [pushKeyName, metadataIndexKeyName]

    private let inner: SecretStore?
    private let service = "xyz.sigilvault.sunstorm.push"

    init(inner: SecretStore?) {
        self.inner = inner
    }

    func get(name: String) throws -> Data? {
        guard Self.sharedNames.contains(name) else { return try inner?.get(name: name) }
        var query = baseQuery(name)
        query[kSecReturnData as String] = true
        query[kSecMatchLimit as String] = kSecMatchLimitOne
        var out: CFTypeRef?
        let status = SecItemCopyMatching(query as CFDictionary, &out)
        switch status {
        case errSecSuccess: return out as? Data
        case errSecItemNotFound: return nil
        default: throw Self.error(status)
        }
    }

    func put(name: String, value: Data) throws {
        guard Self.sharedNames.contains(name) else {
            guard let inner else { throw SecretStoreError.Unavailable(reason: "the extension stores no secrets") }
            return try inner.put(name: name, value: value)
        }
        try delete(name: name)
        var query = baseQuery(name)
        query[kSecValueData as String] = value
        // Readable by the extension while the phone is locked (after the first unlock);
        // never synced, never leaves this device.
        query[kSecAttrAccessible as String] = kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly
        query[kSecAttrSynchronizable as String] = false
        let status = SecItemAdd(query as CFDictionary, nil)
        guard status == errSecSuccess else { throw Self.error(status) }
    }

    func delete(name: String) throws {
        guard Self.sharedNames.contains(name) else {
            try inner?.delete(name: name)
            return
        }
        let status = SecItemDelete(baseQuery(name) as CFDictionary)
        guard status == errSecSuccess || status == errSecItemNotFound else { throw Self.error(status) }
    }

    private func baseQuery(_ name: String) -> [String: Any] {
        [kSecClass as String: kSecClassGenericPassword,
         kSecAttrService as String: service,
         kSecAttrAccount as String: name,
         // The first keychain-access-groups entry with the team prefix; resolved by the
         // entitlement (docs/ios.md).
         kSecAttrAccessGroup as String: (Bundle.main.object(forInfoDictionaryKey: "AppIdentifierPrefix") as? String ?? "")
            + SharedStorage.keychainGroupSuffix]
    }

    private static func error(_ status: OSStatus) -> SecretStoreError {
        let text = SecCopyErrorMessageString(status, nil) as String? ?? "OSStatus \(status)"
        return SecretStoreError.Failed(reason: text)
    }
}
