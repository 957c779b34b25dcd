import Foundation
import Sunstorm
import UserNotifications

/// The Notification Service Extension: every push octane sends (`mutable-content: 1`,
/// the sealed request under `sigil`) is verified, decoded and checked against the user's
/// guardrails by the core **before** anything shows (docs/push.md). The text shown is the
/// core's; the placeholder octane put in `aps.alert` never reaches the screen.
final class NotificationService: UNNotificationServiceExtension {
    private var contentHandler: ((UNNotificationContent) -> Void)?

    override func didReceive(
        _ request: UNNotificationRequest,
        withContentHandler contentHandler: @escaping (UNNotificationContent) -> Void
    ) {
        self.contentHandler = contentHandler
        guard let text = request.content.userInfo["sigil"] as? String,
              let sealed = Data(base64Encoded: text) else {
            contentHandler(request.content) // not a Sigil push
            return
        }
        contentHandler(Self.content(for: sealed))
    }

    /// Out of time (about 30 s; the core answers in milliseconds): show nothing rather than
    /// octane's unverified placeholder.
    override func serviceExtensionTimeWillExpire() {
        contentHandler?(UNNotificationContent())
    }

    /// The notification for one push: the core's verified text, or empty content (nothing
    /// is shown; needs the `com.apple.developer.usernotifications.filtering` entitlement).
    static func content(for sealed: Data) -> UNNotificationContent {
        let empty = UNNotificationContent()
        do {
            // Read-only on the app's database; the push key and the metadata index key from
            // the shared keychain group. The metadata key only, never the bundle file: the
            // extension reads the rows of the app's index each push needs (docs/push.md,
            // "Budgets").
            let ext = try NotificationExtension.open(
                config: NotificationExtensionConfig(
                    databasePath: SharedStorage.databasePath,
                    octanePublicKeyHex: SharedStorage.octanePublicKeyHex,
                    metadataPublicKeyHex: SharedStorage.metadataPublicKeyHex,
                    metadataBundle: nil),
                secrets: PushKeySharingSecretStore(inner: nil))
            switch try ext.handlePush(payload: sealed) {
            case let .show(title, body, category, requestId, pairId, expiresAt):
                let c = UNMutableNotificationContent()
                c.title = title
                c.body = body
                c.categoryIdentifier = category // the app registers Approve/Reject under it
                c.threadIdentifier = pairId
                c.userInfo = ["request_id": requestId, "pair_id": pairId, "expires_at": expiresAt]
                c.interruptionLevel = .timeSensitive
                return c
            case let .fetch(pairId, requestId):
                // Too large for a push, or it needs metadata the app's index cannot give:
                // no request text. The app shows it (its checks run again) when opened.
                let c = UNMutableNotificationContent()
                c.title = "Signature request"
                c.body = "Open Sunstorm to review it."
                c.userInfo = ["request_id": requestId, "pair_id": pairId, "fetch": true]
                return c
            case .suppress:
                return empty // blocked, expired, revoked, replayed, tampered, unknown pair…
            }
        } catch {
            return empty // push not set up, or the app has not migrated the database yet
        }
    }
}
