package xyz.sigilvault.sunstorm.android.push

import java.util.Base64
import xyz.sigilvault.sunstorm.NotificationExtension
import xyz.sigilvault.sunstorm.NotificationOutcomeView
import xyz.sigilvault.sunstorm.SunstormException

/**
 * A push as the messaging SDK delivers it: the shape of FCM's `RemoteMessage` the handler
 * needs (the FCM SDK is not a dependency of this library; the app's own
 * `FirebaseMessagingService` adapts its `RemoteMessage` in one line).
 */
interface PushMessage {
    /** The message's data (`RemoteMessage.data`): octane puts the sealed request under `sigil`. */
    val data: Map<String, String>
}

/** Where a verified notification goes: [AndroidNotificationPoster] on a device, a list in tests. */
interface NotificationPoster {
    /** Posts [shown] (already verified and worded by the core) with approve/reject actions. */
    fun post(shown: NotificationOutcomeView.Show)
}

/** What [SunstormPushHandler.onMessageReceived] did with one push. */
sealed interface PushHandling {
    /** A notification was posted. */
    data class Shown(val requestId: String) : PushHandling

    /** Only the request id fitted in the push: the app must fetch it (its poll checks it). */
    data class FetchInApp(val pairId: String, val requestId: String) : PushHandling

    /** Nothing shown: the core's reason (`tampered`, `replayed`, `blocked`, `expired`…). */
    data class Suppressed(val reason: String, val violations: List<String>) : PushHandling

    /** Not a Sigil push (no `sigil` field): left to the app's other handlers. */
    data object NotOurs : PushHandling

    /** Push is not usable on this phone yet (no push key, database not opened by the app). */
    data class Unavailable(val error: SunstormException) : PushHandling
}

/**
 * The body of the app's `FirebaseMessagingService`, written against two small interfaces so
 * it runs (and is tested) without the FCM SDK:
 *
 * ```kotlin
 * class AppMessagingService : FirebaseMessagingService() {
 *     private val handler by lazy { (application as App).pushHandler }
 *     override fun onMessageReceived(m: RemoteMessage) { handler.onMessageReceived(object : PushMessage { override val data = m.data }) }
 *     override fun onNewToken(token: String) = handler.onNewToken(token)
 * }
 * ```
 *
 * Every push goes through the core's [NotificationExtension] (opened lazily by [openExtension],
 * read-only on the app's database): only a request whose SP and octane signatures verified,
 * that decodes and that the user's guardrails allow is posted; anything else is suppressed
 * with the core's reason and nothing is shown. [onNewToken] hands a rotated token to
 * [registerToken] (the app calls `SunstormCore.registerPushTarget(PushPlatform.FCM, token)`).
 */
class SunstormPushHandler(
    private val openExtension: () -> NotificationExtension,
    private val poster: NotificationPoster,
    private val registerToken: (String) -> Unit,
    private val fetchInApp: (pairId: String, requestId: String) -> Unit = { _, _ -> },
) {
    @Volatile private var extension: NotificationExtension? = null

    /** Handles one push: verifies it in the core, then posts, asks the app to fetch, or drops it. */
    fun onMessageReceived(message: PushMessage): PushHandling {
        val sealedText = message.data[SEALED_KEY] ?: return PushHandling.NotOurs
        if (sealedText.length > MAX_SEALED_CHARS) return PushHandling.Suppressed("tampered", emptyList())
        val sealed = try {
            Base64.getDecoder().decode(sealedText)
        } catch (e: IllegalArgumentException) {
            return PushHandling.Suppressed("tampered", emptyList())
        }
        val outcome = try {
            ext().handlePush(sealed)
        } catch (e: SunstormException) {
            extension = null // reopen next time (e.g. after the app migrated the database)
            return PushHandling.Unavailable(e)
        }
        return when (outcome) {
            is NotificationOutcomeView.Show -> {
                poster.post(outcome)
                PushHandling.Shown(outcome.requestId)
            }
            is NotificationOutcomeView.Fetch -> {
                fetchInApp(outcome.pairId, outcome.requestId)
                PushHandling.FetchInApp(outcome.pairId, outcome.requestId)
            }
            is NotificationOutcomeView.Suppress -> PushHandling.Suppressed(outcome.reason, outcome.violations)
        }
    }

    /** FCM rotated this device's token: the app registers it with octane again. */
    fun onNewToken(token: String) = registerToken(token)

    private fun ext(): NotificationExtension =
        extension ?: synchronized(this) { extension ?: openExtension().also { extension = it } }

    /** The data key and the size limit. */
    companion object {
        /** The data key octane puts the sealed request under (`docs/push-gateway.md`). */
        const val SEALED_KEY = "sigil"

        /** FCM data is at most 4 KB; longer text is not octane's. */
        const val MAX_SEALED_CHARS = 4096
    }
}
